"""``rae review queue``: the pairs a human should see, and why.

Three sources, mixed in the proportions asked for (a short source leaves its share to the others):

- low confidence: this program's stored judgments the judge was least sure of;
- hard disagreements: pairs where the judge said irrelevant and a human highly relevant, or the reverse;
- worst queries: the pairs of the queries an evaluation scored worst, for each engine.

A pair a reviewer has already labelled is not queued again for the same reason, and no pair is queued twice.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from rae.datasets.records import Pair
from rae.eval.engines.trec import TrecRunEngine
from rae.labels import Label
from rae.review.labels import latest_reviews, with_reviews
from rae.store.schema import JudgmentRow, ReviewItemRow
from rae.workspace import Workspace

SOURCES = ("confidence", "disagreement", "worst")
HARD = {Label.IRRELEVANT, Label.HIGHLY_RELEVANT}


@dataclass(frozen=True)
class Candidate:
    pair: Pair
    reason: str
    judgment: str | None


def low_confidence(workspace: Workspace, reviewed: set[tuple[str, str]], limit: int) -> list[Candidate]:
    steps = workspace.steps()
    with workspace.store.session() as session:
        rows = session.scalars(
            select(JudgmentRow)
            .where(
                JudgmentRow.program_hash == steps.hashes["judgment"],
                JudgmentRow.model_id == workspace.model.identity,
                JudgmentRow.confidence.is_not(None),
            )
            .order_by(JudgmentRow.confidence, JudgmentRow.fingerprint)
            .limit(limit + len(reviewed))
        ).all()
    return [
        Candidate(Pair(r.query_id, r.query, r.product_id), f"low confidence: {r.label} at {r.confidence:.2f}", r.fingerprint)
        for r in rows
        if (r.query_id, r.product_id) not in reviewed
    ][:limit]


def hard_disagreements(workspace: Workspace, split: str, limit: int) -> list[Candidate]:
    labelled = with_reviews(workspace.labelled, latest_reviews(workspace.store))
    humans = labelled.select(split)
    pairs = [Pair(h.query_id, h.query, h.product_id) for h in humans]
    outcomes = workspace.steps().stored_judgments(pairs, labelled.catalog)
    found = []
    for human, pair in zip(humans, pairs, strict=True):
        outcome = outcomes[pair]
        if outcome.ok and {human.label, Label(outcome.value.label)} == HARD:
            found.append(Candidate(pair, f"hard disagreement: human {human.label}, judge {outcome.value.label}", outcome.value.fingerprint))
    return found[:limit]


def worst_queries(workspace: Workspace, report_dir: Path, reviewed: set[tuple[str, str]], limit: int) -> list[Candidate]:
    metrics = json.loads((report_dir / "metrics.json").read_text())
    texts = {w["query_id"]: w["query"] for rows in metrics["worst_queries"].values() for w in rows}
    pairs: dict[Pair, str] = {}
    for engine, rows in metrics["worst_queries"].items():
        ranking = TrecRunEngine(report_dir / "runs" / f"{engine}.trec").rankings
        for worst in rows:
            for product_id in ranking.get(worst["query_id"], []):
                pair = Pair(worst["query_id"], texts[worst["query_id"]], product_id)
                pairs.setdefault(pair, f"worst query for {engine} in evaluation {metrics.get('run_id', report_dir.name)}")
    catalog = workspace.labelled.catalog
    known = [p for p in pairs if p.product_id in catalog and (p.query_id, p.product_id) not in reviewed]
    outcomes = workspace.steps().stored_judgments(known, catalog)
    return [Candidate(p, pairs[p], outcomes[p].value.fingerprint if outcomes[p].ok else None) for p in known][:limit]


def build_queue(
    workspace: Workspace, name: str, size: int, mix: dict[str, float], split: str, report_dir: Path | None
) -> list[ReviewItemRow]:
    reviewed = {(r.query_id, r.product_id) for r in latest_reviews(workspace.store)}
    shares = {source: mix.get(source, 0.0) for source in SOURCES}
    if report_dir is None:
        shares["worst"] = 0.0
    total = sum(shares.values()) or 1.0
    pools = {
        "confidence": low_confidence(workspace, reviewed, size) if shares["confidence"] else [],
        "disagreement": hard_disagreements(workspace, split, size) if shares["disagreement"] else [],
        "worst": worst_queries(workspace, report_dir, reviewed, size) if shares["worst"] and report_dir else [],
    }
    with workspace.store.session() as session:
        queued = {(r.query_id, r.product_id) for r in session.scalars(select(ReviewItemRow).where(ReviewItemRow.queue == name))}
    chosen: dict[tuple[str, str], Candidate] = {}

    def take(candidate: Candidate) -> None:
        key = (candidate.pair.query_id, candidate.pair.product_id)
        if key not in queued:
            chosen.setdefault(key, candidate)

    for source in SOURCES:  # each source's share first
        for candidate in pools[source][: round(size * shares[source] / total)]:
            take(candidate)
    for source in SOURCES:  # then whatever is left, to the size asked
        for candidate in pools[source]:
            if len(chosen) >= size:
                break
            take(candidate)
    with workspace.store.session() as session, session.begin():
        start = session.scalar(select(func.coalesce(func.max(ReviewItemRow.position), 0)).where(ReviewItemRow.queue == name))
        items = [
            ReviewItemRow(queue=name, position=start + i + 1, query_id=c.pair.query_id, query=c.pair.query,
                          product_id=c.pair.product_id, reason=c.reason, judgment=c.judgment)
            for i, c in enumerate(list(chosen.values())[:size])
        ]
        session.add_all(items)
    return items

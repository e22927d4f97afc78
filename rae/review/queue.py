"""``rae review queue``: the pairs a human should see, and why.

Three sources, mixed in the proportions asked for (a short source leaves its share to the others):

- ``confidence``: this program's stored judgments the judge was least sure of;
- ``disagreement``: pairs where the judge said irrelevant and a human highly relevant, or the reverse;
- ``worst``: the pairs of the queries an evaluation scored worst, for each engine.

A pair a reviewer has already labelled is not queued again for the same reason, and no pair is queued twice. Each
queued item records its source and a reason a reviewer can read.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rae.config import ConfigError
from rae.datasets.labelled_set import with_reviews
from rae.datasets.records import Pair
from rae.labels import Label, is_hard_disagreement
from rae.retrieve.trec import TrecRunEngine
from rae.store.human_labels import latest_ratings
from rae.store.records import judgment_records
from rae.store.review_items import Item, add_items, queued_pairs
from rae.store.schema import ReviewItemRow
from rae.workspace import Workspace

SOURCES = ("confidence", "disagreement", "worst")
SOURCE_NAMES = {"confidence": "low confidence", "disagreement": "hard disagreement", "worst": "worst query", "evaluation": "drawn for an evaluation"}


@dataclass(frozen=True)
class Candidate:
    pair: Pair
    source: str  # one of SOURCES
    reason: str
    judgment: str | None  # the fingerprint of the LLM judgment the reviewer is shown


@dataclass
class Queued:
    """What one ``rae review queue`` added to a queue."""

    queue: str
    items: list[ReviewItemRow]
    by_source: Counter = field(default_factory=Counter)
    no_evaluation: bool = False  # worst queries were asked for, but there is no evaluation to take them from

    def line(self) -> str:
        counts = ", ".join(f"{n} {SOURCE_NAMES[source]}" for source, n in self.by_source.most_common())
        line = f"queued {len(self.items)} pairs in {self.queue!r}: {counts}"
        if self.no_evaluation:
            line += "\nno evaluation run found: no worst-query pairs (run `rae evaluate` first)"
        return line


def parse_mix(text: str) -> dict[str, float]:
    """``confidence:0.5,disagreement:0.3,worst:0.2`` as shares by source."""
    try:
        shares = {part.split(":")[0].strip(): float(part.split(":")[1]) for part in text.split(",") if part.strip()}
    except (IndexError, ValueError):
        raise ConfigError(f"--mix takes source:share pairs, e.g. confidence:0.5,disagreement:0.3,worst:0.2 (got {text!r})") from None
    unknown = set(shares) - set(SOURCES)
    if unknown:
        raise ConfigError(f"unknown review sources {sorted(unknown)}: use {', '.join(SOURCES)}")
    return shares


def low_confidence(workspace: Workspace, reviewed: set[tuple[str, str]], limit: int) -> list[Candidate]:
    """The pairs this model has judged that the program, as it is now, is least sure of."""
    records = judgment_records(workspace.store, workspace.model.identity)
    pairs = list(dict.fromkeys(Pair(r.query_id, r.query, r.product_id) for r in records if (r.query_id, r.product_id) not in reviewed))
    sure = [
        (outcome.value.confidence, outcome.value.fingerprint, pair, outcome.value.label)
        for pair, outcome in workspace.stored_judgments([p for p in pairs if p.product_id in workspace.labelled.catalog]).items()
        if outcome.ok and outcome.value.confidence is not None
    ]
    sure.sort(key=lambda s: (s[0], s[1]))
    return [Candidate(pair, "confidence", f"low confidence: {label} at {confidence:.2f}", key) for confidence, key, pair, label in sure[:limit]]


def hard_disagreements(workspace: Workspace, split: str, limit: int) -> list[Candidate]:
    labelled = with_reviews(workspace.labelled, latest_ratings(workspace.store))
    humans = labelled.select(split)
    outcomes = workspace.stored_judgments([h.pair for h in humans])
    found = []
    for human in humans:
        outcome = outcomes[human.pair]
        if outcome.ok and is_hard_disagreement(human.label, Label(outcome.value.label)):
            reason = f"hard disagreement: human {human.label}, judge {outcome.value.label}"
            found.append(Candidate(human.pair, "disagreement", reason, outcome.value.fingerprint))
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
    outcomes = workspace.stored_judgments(known)
    return [Candidate(p, "worst", pairs[p], outcomes[p].value.fingerprint if outcomes[p].ok else None) for p in known][:limit]


def build_queue(workspace: Workspace, name: str, size: int, mix: dict[str, float], split: str, report_dir: Path | None) -> Queued:
    reviewed = {(r.query_id, r.product_id) for r in latest_ratings(workspace.store)}
    shares = {source: mix.get(source, 0.0) for source in SOURCES}
    no_evaluation = report_dir is None and bool(shares["worst"])
    if report_dir is None:
        shares["worst"] = 0.0
    total = sum(shares.values()) or 1.0
    pools = {
        "confidence": low_confidence(workspace, reviewed, size) if shares["confidence"] else [],
        "disagreement": hard_disagreements(workspace, split, size) if shares["disagreement"] else [],
        "worst": worst_queries(workspace, report_dir, reviewed, size) if shares["worst"] and report_dir else [],
    }
    queued = queued_pairs(workspace.store, name)
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
    taken = list(chosen.values())[:size]
    items = add_items(workspace.store, name, [Item(c.pair.query_id, c.pair.query, c.pair.product_id, c.source, c.reason, c.judgment) for c in taken])
    return Queued(name, items, Counter(c.source for c in taken), no_evaluation)

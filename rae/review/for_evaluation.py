"""``rae review queue --for-evaluation``: which queries humans should label so that an evaluation's numbers can be
corrected by them (prediction-powered inference), and the queue of their pairs.

The draw is random, so that the human-labelled queries are a fair sample of the evaluated ones and the correction is
unbiased. ``uniform`` gives every query the same chance. ``confidence`` stratifies by how sure the judge was of the
query's pool (its mean confidence, split at the median): two thirds of the draw go to the queries the judge was least
sure of, where human labels correct the most. Each drawn query's inclusion probability is stored, and the estimates
weight it by the inverse, so the stratified draw is unbiased too. Every pair of a drawn query's pool that has no
human label yet is queued: a query counts as human-labelled once its whole pool is. The page does not show the
judge's label for these pairs, so that the humans' labels stay independent of it (the correction needs that).

A new draw from the same evaluation replaces the previous one (inclusion probabilities of two draws do not combine).
"""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rae.config import ConfigError
from rae.datasets.records import Pair
from rae.evaluate.stored_run import StoredEvaluation
from rae.store.review_items import Item, add_items
from rae.store.samples import record_sample
from rae.workspace import Workspace

Design = Literal["uniform", "confidence"]
UNSURE_SHARE = 2 / 3


@dataclass
class Drawn:
    run_id: str
    design: Design
    queue: str
    probabilities: dict[str, float] = field(default_factory=dict)  # query id -> inclusion probability
    strata: dict[str, str] = field(default_factory=dict)
    queued: int = 0
    already_labelled: int = 0

    def line(self) -> str:
        by_stratum = ", ".join(f"{s} {list(self.strata.values()).count(s)}" for s in dict.fromkeys(self.strata.values()))
        return (
            f"drew {len(self.probabilities)} queries of evaluation {self.run_id} ({self.design}: {by_stratum}); "
            f"queued {self.queued} pairs in {self.queue!r} ({self.already_labelled} already had a human label)"
        )


def draw_for_evaluation(workspace: Workspace, stored: StoredEvaluation, n: int, design: Design, queue: str, seed: int = 0) -> Drawn:
    query_ids = [q.query_id for q in stored.queries]
    if not 1 <= n <= len(query_ids):
        raise ConfigError(f"--queries must be between 1 and the evaluation's {len(query_ids)} queries (got {n})")
    rng = np.random.default_rng(seed)
    if design == "uniform":
        strata = dict.fromkeys(query_ids, "all")
        drawn = _draw(rng, {"all": query_ids}, {"all": n})
    else:
        strata = _confidence_strata(workspace, stored)
        members = {s: [q for q in query_ids if strata[q] == s] for s in ("unsure", "sure")}
        unsure = min(len(members["unsure"]), round(n * UNSURE_SHARE))
        drawn = _draw(rng, members, {"unsure": unsure, "sure": min(len(members["sure"]), n - unsure)})
    result = Drawn(stored.run_id, design, queue, {q: p for q, p in drawn.items()}, {q: strata[q] for q in drawn})
    _record(workspace, stored, result)
    _queue(workspace, stored, result)
    return result


def _draw(rng: np.random.Generator, members: dict[str, list[str]], sizes: dict[str, int]) -> dict[str, float]:
    """Query id -> inclusion probability: a simple random sample of the asked size within each stratum."""
    drawn = {}
    for stratum, queries in members.items():
        size = sizes.get(stratum, 0)
        for query in rng.choice(sorted(queries), size, replace=False) if size else []:
            drawn[str(query)] = size / len(queries)
    return drawn


def _confidence_strata(workspace: Workspace, stored: StoredEvaluation) -> dict[str, str]:
    """``unsure`` for the queries whose pool the judge was least sure of (mean confidence at or below the median)."""
    pools = stored.pools()
    texts = {q.query_id: q.text for q in stored.queries}
    pairs = [Pair(q, texts[q], p) for q, pool in pools.items() for p in sorted(pool)]
    by_query: dict[str, list[float]] = {}
    for pair, outcome in workspace.stored_judgments(pairs).items():
        if outcome.ok and outcome.value.confidence is not None:
            by_query.setdefault(pair.query_id, []).append(outcome.value.confidence)
    if not by_query:
        raise ConfigError("the judge's confidence was not measured for this evaluation: use --design uniform (or set confidence)")
    mean = {q: float(np.mean(by_query.get(q, [0.0]))) for q in pools}
    median = float(np.median(list(mean.values())))
    return {q: "unsure" if mean[q] <= median else "sure" for q in pools}


def _record(workspace: Workspace, stored: StoredEvaluation, drawn: Drawn) -> None:
    record_sample(workspace.store, stored.population, stored.run_id, drawn.design, drawn.strata, drawn.probabilities)


def _queue(workspace: Workspace, stored: StoredEvaluation, drawn: Drawn) -> None:
    """Every pair of a drawn query's pool that no human has labelled, in the queue, at its end."""
    human = workspace.human_labels
    labelled = {(j.query_id, j.product_id) for j in human.judgments}
    texts = {q.query_id: q.text for q in stored.queries}
    pools = stored.pools()
    pairs = [(q, p) for q in drawn.probabilities for p in sorted(pools[q])]
    todo = [(q, p) for q, p in pairs if (q, p) not in labelled and p in human.catalog]
    drawn.already_labelled = len(pairs) - len(todo)
    items = [
        Item(q, texts[q], p, "evaluation",
             f"drawn for evaluation {stored.run_id} ({drawn.design}, stratum {drawn.strata[q]}, p={drawn.probabilities[q]:.2f})")
        for q, p in todo
    ]
    drawn.queued = len(add_items(workspace.store, drawn.queue, items))

"""How good one configuration of an engine is, for a tuning study: its metric under the judge's labels, corrected by
the humans' where a sample rae can vouch for labelled whole result lists.

``JudgeScorer`` judges through the store (a product the judge has seen for that query costs nothing, so a trial that
returns known products is free), within the study's budget; the labels a team already holds are not a random sample
of the trials' lists, so they correct nothing here (the held-out check, ``rae.improve.heldout``, is where they count).
``SimulatedScorer`` is the same with a simulated judge on the bundled labelled set (lists kept to the products
humans labelled, as ``rae ppi-check`` does), where the truth is known and a random sample of the queries counts as
human-labelled: it shows what the tuner does with a judge of known quality.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from rae.annotate.run import AnnotationRun
from rae.annotate.spending import Budget
from rae.datasets.records import Query
from rae.evaluate.evaluation import human_gains_for
from rae.evaluate.metrics import Gains, engine_metrics
from rae.evaluate.ppi import MIN_HUMAN_QUERIES, Sample, three_estimates
from rae.labels import Label
from rae.retrieve.rankings import Rankings, pairs_of
from rae.stats import Estimate, mean_with_ci
from rae.workspace import Workspace


@dataclass(frozen=True)
class Scored:
    """One configuration's score on a set of queries."""

    interval: Estimate  # the estimate the study maximises (its value), with its interval
    basis: str
    judge: dict[str, float]  # query id -> the metric under the judge's labels
    human: dict[str, float]  # query id -> under the humans', for the labelled sample's queries
    new_pairs: int = 0
    cost_usd: float | None = 0.0
    stopped: bool = False  # the budget stopped the judging: the score is incomplete


class Scorer(Protocol):
    def new_pairs(self, rankings: Rankings) -> int: ...

    def score(self, rankings: Rankings) -> Scored: ...


def scored(rankings: Rankings, judge_gains: Gains, human_gains: Gains, labelled: list[str], k: int, metric: str) -> Scored:
    """The metric under the judge's labels on every query, corrected by ``labelled`` (a uniform random sample of the
    queries whose lists humans labelled) when there are enough of them, else the judge's alone."""
    queries = sorted(rankings)
    judge = per_query(rankings, judge_gains, k, metric, queries)
    sample = [q for q in labelled if q in rankings]
    human = per_query({q: rankings[q] for q in sample}, human_gains, k, metric, sample) if sample else pd.Series(dtype=float)
    if len(sample) < MIN_HUMAN_QUERIES:
        return Scored(mean_with_ci(judge.to_numpy()), "the judge alone", judge.to_dict(), human.to_dict())
    position = {q: i for i, q in enumerate(queries)}
    drawn = Sample.uniform([position[q] for q in sample], len(queries))
    estimate = three_estimates(judge.to_numpy(), human.to_numpy(), drawn).ppi
    return Scored(estimate, f"the judge corrected by {len(sample)} queries drawn at random", judge.to_dict(), human.to_dict())


def per_query(rankings: Rankings, gains: Gains, k: int, metric: str, queries: list[str]) -> pd.Series:
    return engine_metrics({q: rankings[q] for q in queries}, gains, k).per_query[metric].reindex(queries).fillna(0.0)


class JudgeScorer:
    """The configured judge, through the store, within the study's budget."""

    def __init__(self, workspace: Workspace, queries: list[Query], k: int, metric: str, budget: Budget | None, progress: bool):
        self.workspace, self.queries, self.k, self.metric = workspace, queries, k, metric
        self.budget, self.progress = budget, progress
        self.human_gains = human_gains_for(queries, workspace.human_labels)

    def new_pairs(self, rankings: Rankings) -> int:
        """Pairs the store has no judgment of (a lookup, no call)."""
        pairs = pairs_of(self.queries, rankings)
        return sum(outcome.status == "missing" for outcome in self.workspace.stored_judgments(pairs).values())

    def score(self, rankings: Rankings) -> Scored:
        pairs = pairs_of(self.queries, rankings)
        run = AnnotationRun(self.workspace.judging(), self.workspace.labelled.catalog, self.workspace.workers, self.progress, self.budget)
        summary = run.run(pairs)
        gains: Gains = {}
        for pair, outcome in run.outcomes.items():  # every pair's judgment, stored before or just now
            if outcome.ok:
                gains.setdefault(pair.query_id, {})[pair.product_id] = Label(outcome.value.label).gain
        result = scored(rankings, gains, self.human_gains, [], self.k, self.metric)
        return Scored(result.interval, result.basis, result.judge, result.human, summary.new_pairs_judged, summary.total.cost_usd,
                      summary.over_budget)


class SimulatedScorer:
    """A simulated judge's labels of the products humans labelled (lists kept to those), and the humans' own labels
    for the queries in ``human_queries`` (a random sample); pairs count as new the first time a scorer sees them."""

    def __init__(self, judge_gains: Gains, human_gains: Gains, human_queries: list[str], k: int, metric: str):
        self.judge_gains, self.k, self.metric = judge_gains, k, metric
        self.human_gains, self.labelled = human_gains, list(human_queries)
        self.seen: set[tuple[str, str]] = set()

    def new_pairs(self, rankings: Rankings) -> int:
        return len(_pairs(kept_to_labelled(rankings, self.human_gains)) - self.seen)

    def score(self, rankings: Rankings) -> Scored:
        kept = kept_to_labelled(rankings, self.human_gains)
        new = _pairs(kept) - self.seen
        self.seen |= new
        result = scored(kept, self.judge_gains, self.human_gains, self.labelled, self.k, self.metric)
        return Scored(result.interval, result.basis, result.judge, result.human, len(new))


def kept_to_labelled(rankings: Rankings, human_gains: Gains) -> Rankings:
    """Each list keeping only the products humans labelled for its query (as ``rae ppi-check`` condenses them)."""
    return {q: [p for p in products if p in human_gains.get(q, {})] for q, products in rankings.items()}


def truth(rankings: Rankings, human_gains: Gains, k: int, metric: str) -> float:
    """The metric under the humans' labels on every query, lists kept to what they labelled: what a simulated
    study's score estimates."""
    kept = kept_to_labelled(rankings, human_gains)
    return float(np.mean(engine_metrics(kept, human_gains, k).per_query[metric].reindex(sorted(kept)).fillna(0.0)))


def _pairs(rankings: Rankings) -> set[tuple[str, str]]:
    return {(q, p) for q, products in rankings.items() for p in products}

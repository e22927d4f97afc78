"""The tuner's held-out check: is the best trial better than the start on queries the study never saw?

The difference best minus start is judged on every held-out query. ``JudgeHeldout`` (the configured judge) has no
sample of them that humans labelled at random, so its interval is the judge's alone; the labels a team already holds
on those queries are the humans' own check (``rae.evaluate.found_labels``): when they do not show a gain, none is
confirmed. ``SimulatedHeldout`` (a simulated judge on the bundled set) has humans label some of the held-out queries,
drawn by the stratified design (more labels where the judge's own spread of the difference is large), and fits the
judge's weight on the human-labelled queries of the tuning part, which the draw does not depend on; its interval is
the corrected one.
"""

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rae.datasets.records import Query
from rae.evaluate.designs import STRATIFIED, beliefs_from_labels, draw, judge_spread, pools_of
from rae.evaluate.found_labels import found_labels
from rae.evaluate.metrics import Gains
from rae.evaluate.ppi import outside_lam, three_estimates
from rae.improve.gate import DifferenceInterval, HumansCheck
from rae.improve.trial_scoring import Scorer, kept_to_labelled, per_query
from rae.retrieve.base import SearchEngine
from rae.retrieve.rankings import Rankings, retrieve
from rae.stats import mean_with_ci


@dataclass
class Checked:
    """Best minus start on the held-out queries, the humans' own check where there is one, and what it says."""

    difference: DifferenceInterval
    queries: int
    humans: HumansCheck | None = None
    reasons: list[str] = field(default_factory=list)  # why a gain the interval shows is not confirmed
    new_pairs: int = 0

    @property
    def confirmed(self) -> bool:
        return self.difference.interval.ci_low > 0 and not self.reasons


class HeldoutCheck(Protocol):
    def check(self, start: SearchEngine, best: SearchEngine) -> Checked: ...


class JudgeHeldout:
    def __init__(self, queries: list[Query], scorer: Scorer, human_gains: Gains, k: int, metric: str):
        self.queries, self.scorer, self.human_gains, self.k, self.metric = queries, scorer, human_gains, k, metric

    def check(self, start: SearchEngine, best: SearchEngine) -> Checked:
        rankings = {name: retrieve(engine, self.queries, self.k)[0] for name, engine in (("start", start), ("best", best))}
        scores = {name: self.scorer.score(r) for name, r in rankings.items()}
        ids = [q.query_id for q in self.queries]
        judge = np.array([scores["best"].judge.get(q, 0.0) - scores["start"].judge.get(q, 0.0) for q in ids])
        alone = mean_with_ci(judge)
        result = Checked(DifferenceInterval(alone, "the judge alone: no held-out queries were drawn for human labelling", alone, 0), len(ids),
                         new_pairs=scores["start"].new_pairs + scores["best"].new_pairs)
        found = found_labels(rankings, self.human_gains, self.metric, self.k)
        if found is not None and found.comparisons[("start", "best")].has_interval:
            result.humans = HumansCheck(found.comparisons[("start", "best")], found.queries)
            if result.humans.estimate.value <= 0:
                result.reasons.append(f"but {result.humans.line()}: no gain by the humans' own labels")
        return result


class SimulatedHeldout:
    def __init__(self, queries: list[Query], tuning_labelled: list[Query], judge_gains: Gains, human_gains: Gains, labelled: int, k: int,
                 metric: str, seed: int = 0):
        self.queries, self.tuning_labelled, self.judge_gains, self.human_gains = queries, tuning_labelled, judge_gains, human_gains
        self.labelled, self.k, self.metric, self.seed = labelled, k, metric, seed

    def check(self, start: SearchEngine, best: SearchEngine) -> Checked:
        ids = [q.query_id for q in self.queries]
        lists = self._lists(start, best, self.queries)
        judge, human = _difference(lists, self.judge_gains, ids, self.k, self.metric), _difference(lists, self.human_gains, ids, self.k, self.metric)
        alone = mean_with_ci(judge)
        if self.labelled <= 0:
            return Checked(DifferenceInterval(alone, "the judge alone: no held-out query counts as human-labelled", alone, 0), len(ids))
        beliefs = beliefs_from_labels({q: self.judge_gains.get(q, {}) for q in ids}, pools=pools_of(lists))
        spread = judge_spread(beliefs, lambda gains: _difference(lists, gains, ids, self.k, self.metric), seed=self.seed)
        sample = draw(STRATIFIED, ids, min(self.labelled, len(ids)), spread, seed=self.seed).sample(ids)
        lam = None
        if self.tuning_labelled:
            tuning_ids, tuning_lists = [q.query_id for q in self.tuning_labelled], self._lists(start, best, self.tuning_labelled)
            lam = outside_lam(_difference(tuning_lists, self.human_gains, tuning_ids, self.k, self.metric),
                              _difference(tuning_lists, self.judge_gains, tuning_ids, self.k, self.metric), judge)
        estimates = three_estimates(judge, human[sample.positions], sample, lam, difference=True)
        if not estimates.ppi.has_interval:
            return Checked(DifferenceInterval(alone, "the judge alone: too few held-out queries labelled", alone, sample.n), len(ids))
        basis = (f"the judge on {len(ids)} held-out queries corrected by {sample.n} drawn by the stratified design"
                 + (", lam fitted on the tuning part's labelled queries" if lam is not None else ""))
        return Checked(DifferenceInterval(estimates.ppi, basis, alone, sample.n, STRATIFIED), len(ids))

    def _lists(self, start: SearchEngine, best: SearchEngine, queries: list[Query]) -> dict[str, Rankings]:
        """Each engine's lists, kept to the products humans labelled."""
        return {name: kept_to_labelled(retrieve(engine, queries, self.k)[0], self.human_gains) for name, engine in (("start", start), ("best", best))}


def _difference(lists: dict[str, Rankings], gains: Gains, ids: list[str], k: int, metric: str) -> np.ndarray:
    """Best minus start per query under ``gains``."""
    return per_query(lists["best"], gains, k, metric, ids).to_numpy() - per_query(lists["start"], gains, k, metric, ids).to_numpy()

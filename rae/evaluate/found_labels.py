"""What human labels that were not drawn for this evaluation can still show: a check, never a correction.

Labels that arrived otherwise (the bundled set, a Quepid or SRW import, reviews of older pools) cover the products
some earlier pool held. The queries they happen to cover whole are selected by the engines' own lists: an engine
that leaves the labelled pool drops its queries out of that set, so correcting the judge with them can hide exactly
the regression it should catch. What they do give, validly as far as it goes, is the humans' own metric over the
products they labelled (Sakai's condensed lists: unlabelled products left out, so the ranking of the labelled ones is
scored), on every query where they labelled anything, and how much of each engine's top k they cover (judged@k).
That estimate is stated as what it is. Condensed lists favour an engine that leaves the pool (its unknown products
are dropped rather than counted as failures), so when even they show a candidate losing, it is losing.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.evaluate.metrics import Gains, condensed, engine_metrics
from rae.evaluate.ppi import DIFFERENCE_RANGE, METRIC_RANGE, MIN_HUMAN_QUERIES
from rae.evaluate.small_sample import Replicates, jackknife_interval, range_skewness
from rae.retrieve.rankings import Rankings
from rae.stats import Estimate


@dataclass(frozen=True)
class PoolCoverage:
    """How much of an engine's top k humans labelled."""

    engine: str
    labelled_share: float  # of the products in its top k over all evaluated queries
    unlabelled_products: int

    def line(self) -> str:
        return f"{self.engine}: {1 - self.labelled_share:.0%} of its top-k products have no human label ({self.unlabelled_products})"


@dataclass
class FoundLabels:
    """The humans' metric on condensed lists, per engine and per difference, over the queries they labelled at all."""

    queries: int  # evaluated queries with at least one human label among their results
    engines: dict[str, Estimate] = field(default_factory=dict)
    comparisons: dict[tuple[str, str], Estimate] = field(default_factory=dict)  # (a, b) -> b minus a
    coverage: dict[str, PoolCoverage] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)  # engine -> query id -> its metric

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "what": "the humans' labels where they exist (condensed lists): not a random sample of the pools, a check",
            "engines": {e: vars(est) for e, est in self.engines.items()},
            "comparisons": [{"a": a, "b": b, **vars(est)} for (a, b), est in self.comparisons.items()],
            "coverage": {e: vars(c) for e, c in self.coverage.items()},
        }


def found_labels(rankings: dict[str, Rankings], human_gains: Gains, metric: str, k: int) -> FoundLabels | None:
    """The check above, or None when humans labelled nothing any engine returned."""
    queries = sorted(next(iter(rankings.values()))) if rankings else []
    lists = {e: condensed({q: r.get(q, [])[:k] for q in queries}, human_gains) for e, r in rankings.items()}
    touched = [q for q in queries if any(lists[e][q] for e in lists)]
    if not touched:
        return None
    result = FoundLabels(len(touched))
    for engine, ranking in rankings.items():
        values = engine_metrics({q: lists[engine][q] for q in touched}, human_gains, k).per_query[metric].reindex(touched).fillna(0.0)
        result.per_query[engine] = values.to_dict()
        result.engines[engine] = mean_interval(values.to_numpy(dtype=float), METRIC_RANGE)
        returned = [p for q in queries for p in ranking.get(q, [])[:k]]
        labelled = sum(p in human_gains.get(q, {}) for q in queries for p in ranking.get(q, [])[:k])
        result.coverage[engine] = PoolCoverage(engine, round(labelled / len(returned), 4) if returned else 1.0, len(returned) - labelled)
    names = list(rankings)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = [q for q in touched if lists[a][q] and lists[b][q]]
            difference = np.array([result.per_query[b][q] - result.per_query[a][q] for q in both])
            result.comparisons[(a, b)] = mean_interval(difference, DIFFERENCE_RANGE)
    return result


def mean_interval(values: np.ndarray, value_range: tuple[float, float]) -> Estimate:
    """The mean of per-query values with rae's small-sample interval (no finite-population correction: the labelled
    queries are not a sample of a known population), its shape from the values' range."""
    if len(values) < MIN_HUMAN_QUERIES:
        return Estimate(float(np.mean(values)) if len(values) else float("nan"), float("nan"), float("nan"), f"{len(values)} queries: too few")
    n = len(values)
    left_out = (values.sum() - values) / (n - 1)
    return jackknife_interval(Replicates(float(values.mean()), [left_out], [np.ones(n)], range_skewness(values, np.ones(n), *value_range)))

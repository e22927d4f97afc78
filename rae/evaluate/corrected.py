"""The judge's metrics corrected by the humans' (prediction-powered inference), for every engine and comparison.

Which queries count as human-labelled: those whose whole pool (every product any engine returned in its top k)
humans labelled. For them the metric under human labels is computed on exactly the lists and pool the judge's metric
uses, so the two differ only by the labels and their difference is the judge's error on that query; that is what the
correction averages. A query whose pool humans labelled only in part counts as unlabelled. Scoring it on a condensed
list (only the products humans judged) would change the metric itself for those queries alone: the correction would
then mix the judge's error with the difference between two metrics, and the estimate would no longer be of the
metric the engine is scored on. (``rae review queue --for-evaluation`` queues whole pools, so sampled queries are
complete.)

When the human-labelled queries were drawn by ``rae review queue --for-evaluation``, only those drawn count, each
weighted by the inverse of its inclusion probability, so a stratified draw stays unbiased. Otherwise (labels that
were there already, such as the labelled set's) every complete query counts with weight one: an estimate valid as far
as those queries are a fair sample of the evaluated ones, which the report says.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.evaluate.metrics import EngineMetrics, Gains, engine_metrics
from rae.evaluate.ppi import ThreeEstimates, three_estimates
from rae.retrieve.rankings import Rankings


@dataclass
class Corrected:
    labelled_queries: list[str]  # query ids whose whole pool humans labelled (and, with a design, that were drawn)
    partial_queries: int  # queries whose pool humans labelled only in part: counted as unlabelled
    design: str  # "all complete queries" or the sampling design of rae review queue --for-evaluation
    engines: dict[str, dict[str, ThreeEstimates]] = field(default_factory=dict)  # engine -> metric -> estimates
    comparisons: dict[tuple[str, str], ThreeEstimates] = field(default_factory=dict)  # (a, b) -> b minus a
    human_metrics: dict[str, EngineMetrics] = field(default_factory=dict)  # engine -> per-query metric, labelled queries
    weights: dict[str, float] | None = None  # query id -> inverse inclusion probability, when a design drew the labelled queries

    def weights_of(self, queries: list[str]) -> np.ndarray | None:
        return np.array([self.weights[q] for q in queries]) if self.weights is not None and queries else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "labelled_queries": len(self.labelled_queries),
            "partial_queries": self.partial_queries,
            "design": self.design,
            "engines": {e: {m: est.as_dict() for m, est in by_metric.items()} for e, by_metric in self.engines.items()},
            "comparisons": [{"a": a, "b": b, **est.as_dict()} for (a, b), est in self.comparisons.items()],
        }


def corrected_metrics(
    rankings: dict[str, Rankings],
    llm_metrics: dict[str, EngineMetrics],
    human_gains: Gains,
    metrics: list[str],
    main_metric: str,
    k: int,
    weights: dict[str, float] | None = None,
) -> Corrected:
    """``rankings`` and ``llm_metrics`` by engine (all evaluated queries); ``weights``: query id -> inverse inclusion
    probability, for the queries a sampling design drew (None: no design)."""
    queries = sorted(next(iter(rankings.values()))) if rankings else []
    pools = {q: {p for ranking in rankings.values() for p in ranking.get(q, [])} for q in queries}
    complete = [q for q in queries if pools[q] and pools[q] <= set(human_gains.get(q, {}))]
    partial = sum(1 for q in queries if q not in complete and pools[q] & set(human_gains.get(q, {})))
    labelled = [q for q in complete if weights is None or q in weights]
    design = "all complete queries, weight one" if weights is None else "drawn by rae review queue --for-evaluation, weighted"
    result = Corrected(labelled, partial, design, weights=weights)
    human_pool = {q: {p: human_gains[q][p] for p in pools[q]} for q in labelled}
    w = np.array([weights[q] for q in labelled]) if weights is not None and labelled else None
    for engine, ranking in rankings.items():
        human = engine_metrics({q: ranking[q] for q in labelled}, human_pool, k)
        result.human_metrics[engine] = human
        result.engines[engine] = {
            m: three_estimates(per_query_values(llm_metrics[engine], m, queries), per_query_values(human, m, labelled), per_query_values(llm_metrics[engine], m, labelled), w)
            for m in metrics
        }
    names = list(rankings)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            llm_difference = per_query_values(llm_metrics[b], main_metric, queries) - per_query_values(llm_metrics[a], main_metric, queries)
            human_difference = per_query_values(result.human_metrics[b], main_metric, labelled) - per_query_values(result.human_metrics[a], main_metric, labelled)
            on_labelled = per_query_values(llm_metrics[b], main_metric, labelled) - per_query_values(llm_metrics[a], main_metric, labelled)
            result.comparisons[(a, b)] = three_estimates(llm_difference, human_difference, on_labelled, w, difference=True)
    return result


def per_query_values(metrics: EngineMetrics, metric: str, queries: list[str]) -> np.ndarray:
    """Per-query values in the given order; a query where the metric is undefined (nothing judged) counts as 0."""
    if not queries:
        return np.array([])
    return metrics.per_query[metric].reindex(queries).fillna(0.0).to_numpy(dtype=float)

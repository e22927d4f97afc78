"""The judge's metrics corrected by human labels, for every engine and comparison, only from a sample rae can vouch for.

The sample is a draw (``rae review queue --for-evaluation``, a design of ``rae.evaluate.designs``) of the evaluated
queries, recorded in the store with its probabilities. A drawn query counts once humans have labelled its whole pool
(every product any engine returned in its top k): then its metric under human labels is computed on exactly the
lists and pool the judge's metric uses, and the two differ only by the labels. Labels from anywhere count for it (the
review page, an import), since the draw, not the labels, decides which queries are in the sample. While some drawn
queries still miss labels the correction is provisional (those that are done may be the easy ones).

Without a draw there is no correction: labels that happen to cover some pools are a sample selected by the engines'
lists. They give the check of ``rae.evaluate.found_labels``, and, when ten or more of their queries are labelled whole,
the judge's weight lam (a weight fitted outside the sample keeps the estimate unbiased and costs the interval nothing).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.evaluate.designs import Draw
from rae.evaluate.found_labels import FoundLabels, found_labels
from rae.evaluate.metrics import EngineMetrics, Gains, engine_metrics
from rae.evaluate.ppi import ThreeEstimates, outside_lam, three_estimates
from rae.retrieve.rankings import Rankings


@dataclass
class Corrected:
    design: str | None  # the draw's design; None: no draw, so no correction
    drawn: int  # distinct queries drawn
    labelled_queries: list[str]  # drawn queries whose pools humans labelled whole
    incomplete: dict[str, int] = field(default_factory=dict)  # drawn query id -> its pool's products without a human label
    engines: dict[str, dict[str, ThreeEstimates]] = field(default_factory=dict)  # engine -> metric -> estimates
    comparisons: dict[tuple[str, str], ThreeEstimates] = field(default_factory=dict)  # (a, b) -> b minus a
    human_metrics: dict[str, EngineMetrics] = field(default_factory=dict)  # engine -> per-query metric, queries labelled whole
    found: FoundLabels | None = None
    draw: Draw | None = None
    outside: list[str] = field(default_factory=list)  # queries labelled whole outside the draw: they fit lam when there are enough

    @property
    def provisional(self) -> bool:
        return bool(self.incomplete)

    @property
    def missing_pairs(self) -> int:
        return sum(self.incomplete.values())

    def estimates(self, judge: np.ndarray, human: np.ndarray, queries: list[str], difference: bool = False) -> ThreeEstimates:
        """The three estimates of a per-query metric (or difference) given over every evaluated query, ``human``
        meaningful where labelled whole: the drawn queries done so far correct the judge, the outside ones fit lam."""
        position = {q: i for i, q in enumerate(queries)}
        at = [position[q] for q in self.outside if q in position]
        lam = outside_lam(human[at], judge[at], judge) if at else None
        sample = self.draw.sample(queries, set(self.labelled_queries))
        return three_estimates(judge, human[sample.positions], sample, lam, difference)

    def summary(self) -> str:
        if self.design is None:
            return "no draw of queries for human labelling: the judge is not corrected (rae review queue --for-evaluation draws one)"
        done = f"{len(self.labelled_queries)} of the {self.drawn} queries drawn ({self.design}) labelled whole"
        if self.provisional:
            done += f"; {len(self.incomplete)} still miss {self.missing_pairs} labels, so the correction is provisional"
        return done

    def as_dict(self) -> dict[str, Any]:
        return {
            "design": self.design, "drawn": self.drawn, "labelled_queries": len(self.labelled_queries), "incomplete_queries": len(self.incomplete),
            "missing_pairs": self.missing_pairs, "provisional": self.provisional, "outside_queries": len(self.outside), "summary": self.summary(),
            "engines": {e: {m: est.as_dict() for m, est in by_metric.items()} for e, by_metric in self.engines.items()},
            "comparisons": [{"a": a, "b": b, **est.as_dict()} for (a, b), est in self.comparisons.items()],
            "found_labels": self.found.as_dict() if self.found is not None else None,
        }


def corrected_metrics(
    rankings: dict[str, Rankings], llm_metrics: dict[str, EngineMetrics], human_gains: Gains, metrics: list[str], main_metric: str, k: int,
    draw: Draw | None = None,
) -> Corrected:
    """``rankings`` and ``llm_metrics`` by engine over all evaluated queries; ``draw`` the recorded draw, if any."""
    queries = sorted(next(iter(rankings.values()))) if rankings else []
    pools = {q: {p for ranking in rankings.values() for p in ranking.get(q, [])} for q in queries}
    whole = {q for q in queries if pools[q] and pools[q] <= set(human_gains.get(q, {}))}
    drawn = [q for q in (draw.draws if draw is not None else {}) if q in pools]
    result = Corrected(draw.design if draw is not None and drawn else None, len(drawn), [q for q in drawn if q in whole],
                       found=found_labels(rankings, human_gains, main_metric, k), draw=draw, outside=sorted(whole - set(drawn)))
    result.incomplete = {q: len(pools[q] - set(human_gains.get(q, {}))) for q in drawn if q not in whole}
    measured = result.labelled_queries + result.outside
    for engine, ranking in rankings.items():
        result.human_metrics[engine] = engine_metrics({q: ranking[q] for q in measured}, {q: {p: human_gains[q][p] for p in pools[q]} for q in measured}, k)
    if result.design is None:
        return result
    series = {engine: {m: (per_query_values(llm_metrics[engine], m, queries), per_query_values(result.human_metrics[engine], m, queries))
                       for m in metrics} for engine in rankings}
    for engine in rankings:
        result.engines[engine] = {m: result.estimates(*series[engine][m], queries) for m in metrics}
    names = list(rankings)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            judge = series[b][main_metric][0] - series[a][main_metric][0]
            human = series[b][main_metric][1] - series[a][main_metric][1]
            result.comparisons[(a, b)] = result.estimates(judge, human, queries, difference=True)
    return result


def per_query_values(metrics: EngineMetrics, metric: str, queries: list[str]) -> np.ndarray:
    """Per-query values in the given order; a query where the metric is undefined (nothing judged) counts as 0."""
    if not queries:
        return np.array([])
    return metrics.per_query[metric].reindex(queries).fillna(0.0).to_numpy(dtype=float)

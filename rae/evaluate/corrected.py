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

What the drawn queries correct need not be the judge's metric alone. PPI asks only that the prediction be fixed before
the draw, and the human labels that existed when the queries were drawn are: the corrected quantity is the judge's
metric with those labels in place of its own (Yilmaz and Aslam's inferred measures likewise keep every judged
document and estimate only the rest). A pair humans labelled before the draw then leaves nothing to correct, the
humans-minus-prediction differences come from the pairs only the judge saw, and the interval narrows as far as the
earlier labels reach, while labels given after the draw (the drawn queries' own among them) stay on the humans'
side, so the estimate stays unbiased whoever chose the earlier labels' queries.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.evaluate.designs import KNOWN, Draw
from rae.evaluate.found_labels import FoundLabels, found_labels
from rae.evaluate.metrics import EngineMetrics, Gains, engine_metrics
from rae.evaluate.ppi import STRATIFIED, Sample, ThreeEstimates, outside_lam, three_estimates
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
    known_whole: list[str] = field(default_factory=list)  # queries labelled whole before the draw (drawn or not): nothing to correct there
    known_pairs: int = 0  # pairs of the pools humans had labelled before the draw: the prediction holds their labels
    predictions: dict[str, EngineMetrics] = field(default_factory=dict)  # engine -> per-query metric under that prediction
    evaluated: int = 0  # the evaluated queries

    @property
    def provisional(self) -> bool:
        return bool(self.incomplete)

    @property
    def missing_pairs(self) -> int:
        return sum(self.incomplete.values())

    def estimates(self, judge: np.ndarray, human: np.ndarray, queries: list[str], predictor: np.ndarray | None = None,
                  difference: bool = False) -> ThreeEstimates:
        """The three estimates of a per-query metric (or difference) given over every evaluated query, ``human``
        meaningful where labelled whole: the drawn queries done so far correct the prediction (the judge's metric, or
        ``predictor``, the judge's with the earlier human labels in place), the outside ones fit lam."""
        fitting = self.outside if predictor is None else self.after_the_draw()
        predictor = judge if predictor is None else predictor
        position = {q: i for i, q in enumerate(queries)}
        at = [position[q] for q in fitting if q in position]
        lam = outside_lam(human[at], predictor[at], predictor) if at else None
        sample = self.draw.sample(queries, set(self.labelled_queries))
        if self.known_everywhere():  # whatever the design drew: the prediction is the humans' metric on every query
            sample = Sample(STRATIFIED, np.arange(len(queries)), np.full(len(queries), KNOWN, dtype=object), {KNOWN: len(queries)})
        return three_estimates(judge, human[sample.positions], sample, lam, difference, predictor)

    def known_everywhere(self) -> bool:
        """Whether the labels given before the draw cover every evaluated query's pool whole: the prediction the draw
        corrects is then the humans' own metric, known exactly, however the queries were drawn."""
        return self.evaluated > 0 and self.known_pairs > 0 and len(self.known_whole) == self.evaluated

    def taken_whole(self) -> list[str]:
        """The drawn queries of a stratified or active design's census: labelled whole before the draw, so taken whole."""
        return [q for q in self.labelled_queries if self.draw is not None and self.draw.strata.get(q) == KNOWN]

    def labelled_since(self) -> list[str]:
        """The drawn queries labelled whole that the labels before the draw did not cover whole: what the humans' labels
        of the draw were spent on, where the prediction can err (a stratified draw takes the others whole)."""
        known = set(self.known_whole)
        return [q for q in self.labelled_queries if q not in known]

    def after_the_draw(self) -> list[str]:
        """The queries labelled whole outside the draw that the earlier labels did not cover whole: where the
        prediction that holds those labels can still err, so what lam and a plan learn from."""
        known = set(self.known_whole)
        return [q for q in self.outside if q not in known]

    def predicted(self, engine: str, metric: str, queries: list[str]) -> np.ndarray | None:
        """An engine's per-query metric under the prediction its drawn queries correct; None: the judge's own."""
        return per_query_values(self.predictions[engine], metric, queries) if engine in self.predictions else None

    def summary(self) -> str:
        if self.design is None:
            return "no draw of queries for human labelling: the judge is not corrected (rae review queue --for-evaluation draws one)"
        done = f"{len(self.labelled_queries)} of the {self.drawn} queries drawn ({self.design}) labelled whole"
        if taken := self.taken_whole():
            done += f" ({len(taken)} of them labelled whole before the draw, taken whole)"
        if self.known_everywhere():
            done += (f"; the {self.known_pairs} human labels of these pools given before the draw cover every pool whole, so the humans' "
                     "metric is known exactly")
        elif self.known_pairs:
            done += f"; they correct the judge's labels with the {self.known_pairs} human labels of these pools given before the draw in place"
        if self.provisional:
            done += f"; {len(self.incomplete)} still miss {self.missing_pairs} labels, so the correction is provisional"
        return done

    def as_dict(self) -> dict[str, Any]:
        return {
            "design": self.design, "drawn": self.drawn, "labelled_queries": len(self.labelled_queries), "incomplete_queries": len(self.incomplete),
            "missing_pairs": self.missing_pairs, "provisional": self.provisional, "outside_queries": len(self.outside),
            "labels_known_before_the_draw": self.known_pairs, "summary": self.summary(),
            "engines": {e: {m: est.as_dict() for m, est in by_metric.items()} for e, by_metric in self.engines.items()},
            "comparisons": [{"a": a, "b": b, **est.as_dict()} for (a, b), est in self.comparisons.items()],
            "found_labels": self.found.as_dict() if self.found is not None else None,
        }


def corrected_metrics(
    rankings: dict[str, Rankings], llm_metrics: dict[str, EngineMetrics], human_gains: Gains, metrics: list[str], main_metric: str, k: int,
    draw: Draw | None = None, known_gains: Gains | None = None, llm_gains: Gains | None = None,
) -> Corrected:
    """``rankings`` and ``llm_metrics`` by engine over all evaluated queries; ``draw`` the recorded draw, if any,
    ``known_gains`` the human labels that existed when it was made and ``llm_gains`` the judge's labels of the pools,
    which the prediction holding them is made of."""
    queries = sorted(next(iter(rankings.values()))) if rankings else []
    pools = {q: {p for ranking in rankings.values() for p in ranking.get(q, [])} for q in queries}
    whole = covered_whole(pools, human_gains)  # a pool no engine filled has nothing to label
    known = {q: {p: g for p, g in (known_gains or {}).get(q, {}).items() if p in pools[q]} for q in queries}
    known_whole = covered_whole(pools, known)  # an empty pool too: nothing there to label or correct
    drawn = [q for q in (draw.draws if draw is not None else {}) if q in pools]
    outside = {q for q in whole - set(drawn) if pools[q]}  # an empty pool outside the draw says nothing of the judge
    result = Corrected(draw.design if draw is not None and drawn else None, len(drawn), [q for q in drawn if q in whole],
                       found=found_labels(rankings, human_gains, main_metric, k), draw=draw,
                       outside=sorted(outside), known_whole=sorted(known_whole), known_pairs=sum(map(len, known.values())),
                       evaluated=len(queries))
    result.incomplete = {q: len(pools[q] - set(human_gains.get(q, {}))) for q in drawn if q not in whole}
    measured = result.labelled_queries + result.outside
    for engine, ranking in rankings.items():
        result.human_metrics[engine] = engine_metrics({q: ranking[q] for q in measured}, {q: {p: human_gains[q][p] for p in pools[q]} for q in measured}, k)
    if result.design is None:
        return result
    if result.known_pairs:
        predicted = {q: {**{p: g for p, g in (llm_gains or {}).get(q, {}).items() if p in pools[q]}, **known[q]} for q in queries}
        result.predictions = {engine: engine_metrics(ranking, predicted, k) for engine, ranking in rankings.items()}
    series: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {}
    for engine in rankings:
        series[engine] = {m: (per_query_values(llm_metrics[engine], m, queries), per_query_values(result.human_metrics[engine], m, queries),
                              result.predicted(engine, m, queries)) for m in metrics}
    for engine in rankings:
        result.engines[engine] = {}
        for m in metrics:
            judge, human, predicted = series[engine][m]
            result.engines[engine][m] = result.estimates(judge, human, queries, predicted)
    names = list(rankings)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (judge_a, human_a, predicted_a), (judge_b, human_b, predicted_b) = series[a][main_metric], series[b][main_metric]
            prediction = None if predicted_a is None else predicted_b - predicted_a
            result.comparisons[(a, b)] = result.estimates(judge_b - judge_a, human_b - human_a, queries, prediction, difference=True)
    return result


def covered_whole(pools: dict[str, set[str]], gains: Gains) -> set[str]:
    """The queries whose pools ``gains`` label every product of (a pool no engine filled among them)."""
    return {q for q, pool in pools.items() if pool <= gains.get(q, {}).keys()}


def per_query_values(metrics: EngineMetrics, metric: str, queries: list[str]) -> np.ndarray:
    """Per-query values in the given order; a query where the metric is undefined (nothing judged) counts as 0."""
    if not queries:
        return np.array([])
    return metrics.per_query[metric].reindex(queries).fillna(0.0).to_numpy(dtype=float)

"""``rae plan``: how many queries must humans label, under each design, to know an engine's metric (or a difference
between engines) to a given precision, and what would that cost?

The judge has judged every evaluated query already; what remains is human labels. From the queries humans labelled so
far (the drawn ones and any others labelled whole: a pilot, for planning only) come the spread of the humans' metric
and of the humans-minus-judge residual (with the judge's weight lam fitted on them). The judge's own spread of each
query's metric (``rae.evaluate.designs``), known for every evaluated query, gives the strata. Then, for a 95%
interval of the target width:

- **humans only**: the smallest n with 2 t(n - 1) sd sqrt(1 - n / N) / sqrt(n) <= width;
- **PPI** (a uniform draw): the same with the residual's spread;
- **stratified**: strata of the judge's spread and Neyman's allocation, each stratum's residual spread estimated from
  the pilot queries in it (the pooled one where it has fewer than three), t with n minus the strata;
- **active**: each query drawn with the active design's probability, without replacement, its residual spread its
  stratum's; the variance Hajek's approximation, (1 / N^2) sum (1 - pi_i) e_i^2 / pi_i.

Each is the width of rae's interval: the t interval's, with the skewness correction on the side of the tail that the
interval takes from the judge's metric over every evaluated query, or from the metric's range when the judge's is
flat (up to 30% wider than the t width: planning with the t width alone would promise intervals narrower than rae
then prints). With ``--margin`` each difference gets the
width that would make ``rae gate`` decisive: twice the distance from the difference seen so far to -margin, the
difference seen being the humans' own labels' where they exist (``rae.evaluate.found_labels``: condensed lists over
every query they labelled any of, more queries than those labelled whole, and less selected), else the queries'
labelled whole. Where those labels fail the candidate already, the row says so instead: no draw can make it pass.

Once a draw holds human labels given before it (``rae.evaluate.corrected``) and three queries the earlier labels did
not cover whole are labelled whole, the plan is for what the drawn queries will correct, the judge's labels with the
earlier ones in place, and learns its residual from those queries only; the queries the earlier labels cover whole are
then the stratified and active designs' census, known exactly and labelled by nobody.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from rae.evaluate.corrected import Corrected, per_query_values
from rae.evaluate.designs import (
    DESIGNS,
    MIN_PER_STRATUM,
    UNCHECKED_SHARE,
    active_probabilities,
    defensive_share,
    even_share_said,
    inclusion_probabilities,
    neyman,
    strata_of,
)
from rae.evaluate.evaluation import Evaluation
from rae.evaluate.found_labels import found_labels
from rae.evaluate.ppi import ACTIVE, MIN_HUMAN_QUERIES, STRATIFIED, UNIFORM, Sample, fitted_lam, interval_shape
from rae.evaluate.small_sample import planned_width
from rae.evaluate.verdicts import FAIL, judged_by_humans
from rae.stats import Estimate

HUMANS = "humans only"
COLUMNS = (HUMANS, *DESIGNS)


@dataclass(frozen=True)
class PlanRow:
    what: str  # an engine, or "b - a" for a comparison
    labelled_now: int
    width: float
    queries: dict[str, int | None] = field(default_factory=dict)  # design (or humans only) -> human-labelled queries needed
    cost: dict[str, float | None] = field(default_factory=dict)  # of the queries labelled
    note: str = ""

    def labelled(self, design: str) -> int | None:
        """The queries humans label under the design; None where none in reach will do."""
        return self.queries.get(design)

    def best(self) -> str | None:
        """The design that labels the fewest queries, of those that reach the width."""
        return min((d for d in DESIGNS if self.labelled(d) is not None), key=self.labelled, default=None)

    def cell(self, design: str) -> str:
        """The design's figure as a table shows it ("n/a" for a population too small for an interval)."""
        n = self.queries.get(design)
        return "n/a" if n is None else str(n)

    def saving(self, design: str) -> float | None:
        """The share of PPI's (uniform) labelled queries the design saves."""
        plain, other = self.queries.get(UNIFORM), self.labelled(design)
        return None if not plain or other is None else round(1 - other / plain, 3)


@dataclass
class Plan:
    metric: str
    target_width: float
    population: int
    pairs_per_query: float
    human_cost_per_pair: float
    rows: list[PlanRow] = field(default_factory=list)
    margin: float | None = None
    known_pairs: int = 0  # human labels given before the draw that the planned prediction holds (0: the judge's alone)
    known_queries: int = 0  # queries those labels cover whole: the stratified and active designs take them whole, for no label
    judge_kappa: float | None = None  # the judge's agreement with the humans' labels, which sets the active design's even share

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "rows"},
                "rows": [{**vars(r), "saving_vs_ppi": {d: r.saving(d) for d in (STRATIFIED, ACTIVE)}} for r in self.rows]}

    def markdown(self) -> str:
        aim = (f"For a decisive gate at margin {self.margin:g} (each difference's interval clear of -{self.margin:g}; engines "
               f"within {self.target_width:g})") if self.margin is not None else f"To know {self.metric} within a 95% interval {self.target_width:g} wide"
        holding = (f"; the judge's labels corrected with the {self.known_pairs} human labels given before the draw in place"
                   if self.known_pairs else "")
        if self.known_queries:
            holding += (f"; {self.known_queries} queries were labelled whole before the draw: the stratified and active designs take "
                        "those whole and label none of them")
        holding += f"; the active design takes {even_share_said(self.judge_kappa)}"
        lines = [
            f"{aim}, of {self.population} evaluated queries: human-labelled queries needed under each design (a human label costs "
            f"${self.human_cost_per_pair:g} a pair, {self.pairs_per_query:.1f} pairs a query{holding})",
            "",
            "| what | labelled now | width | " + " | ".join(COLUMNS) + " | cost humans only | cost best design |",
            "| --- " * (len(COLUMNS) + 5) + "|",
        ]
        for r in self.rows:
            if r.note:
                width = f"{r.width:.3f}" if r.width > 1e-9 else "n/a"
                lines.append(f"| {r.what} | {r.labelled_now} | {width} | {r.note} |" + " |" * (len(COLUMNS) + 1))
                continue
            cells = " | ".join(r.cell(c) for c in COLUMNS)
            best = r.best()
            best_cost = f"${r.cost[best]:,.2f} ({best})" if best is not None else "n/a"
            human_cost = f"${r.cost[HUMANS]:,.2f}" if r.cost.get(HUMANS) is not None else "n/a"
            lines.append(f"| {r.what} | {r.labelled_now} | {r.width:.3f} | {cells} | {human_cost} | {best_cost} |")
        return "\n".join(lines)



@dataclass(frozen=True)
class Pilot:
    """What a row is planned from: the judge's per-query value on every evaluated query and its spread, and the
    humans' value on the queries labelled so far (positions into the evaluated queries)."""

    judge: np.ndarray
    spread: np.ndarray
    labelled: np.ndarray
    human: np.ndarray
    difference: bool = False  # values are differences of two engines' metric
    known: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))  # queries labelled whole already: the census beside a draw
    even_share: float = UNCHECKED_SHARE  # the active design's probability spread evenly (``defensive_share``)

    def residual(self) -> np.ndarray:
        """The humans' value less the judge's, weighted by lam fitted on the labelled queries, on each of them."""
        weights = Sample.uniform(self.labelled, len(self.judge)).weights()[:1]
        lam = float(fitted_lam(self.human, self.judge[self.labelled], weights, float(np.var(self.judge, ddof=1)))[0])
        return self.human - lam * self.judge[self.labelled]


def plan_labels(evaluation: Evaluation, spreads: dict[str, np.ndarray], metric: str, target_width: float, pairs_per_query: float,
                human_cost_per_pair: float, margin: float | None = None, judge_kappa: float | None = None) -> Plan:
    """A row for each engine and each difference of two, from the queries labelled whole so far; ``judge_kappa`` (the
    judge's agreement with the humans' labels) sets how far an active draw would follow the judge's spread."""
    queries = [q.query_id for q in evaluation.queries]
    plan = Plan(metric, target_width, len(queries), pairs_per_query, human_cost_per_pair, margin=margin, judge_kappa=judge_kappa)
    even_share = defensive_share(judge_kappa)
    corrected = evaluation.corrected
    known = sorted(corrected.human_metrics[next(iter(corrected.human_metrics))].per_query.index) if corrected and corrected.human_metrics else []
    judge = {e: per_query_values(m, metric, queries) for e, m in evaluation.metrics.items()}
    position = {q: i for i, q in enumerate(queries)}
    census = np.array([position[q] for q in (corrected.known_whole if corrected else []) if q in position], dtype=int)
    plan.known_queries = len(census)
    if holds_earlier_labels(corrected):
        judge = {e: corrected.predicted(e, metric, queries) for e in evaluation.metrics}
        known, plan.known_pairs = sorted(corrected.labelled_since() + corrected.after_the_draw()), corrected.known_pairs
    labelled = np.array([position[q] for q in known], dtype=int)
    human = {e: per_query_values(corrected.human_metrics[e], metric, queries) if corrected else np.zeros(len(queries)) for e in evaluation.metrics}
    names = list(evaluation.metrics)
    found = found_labels({run.name: run.rankings for run in evaluation.engines}, evaluation.human_gains, metric, evaluation.k)
    for e in names:
        plan.rows.append(plan_row(e, Pilot(judge[e], spreads.get(e, np.ones(len(queries))), labelled, human[e][labelled], known=census,
                                                  even_share=even_share),
                                  target_width, pairs_per_query, human_cost_per_pair))
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            what, difference = f"{b} - {a}", human[b] - human[a]
            humans_say = found.comparisons.get((a, b)) if found is not None else None
            if margin is not None and humans_say is not None and judged_by_humans(humans_say, margin) == FAIL:
                plan.rows.append(PlanRow(what, len(labelled), 0.0, note=_failed_by_humans(humans_say, found.queries, margin)))
                continue
            seen = humans_say.value if humans_say is not None and humans_say.has_interval else _mean(difference[labelled])
            pilot = Pilot(judge[b] - judge[a], spreads.get(what, np.ones(len(queries))), labelled, difference[labelled], difference=True, known=census,
                          even_share=even_share)
            plan.rows.append(plan_row(what, pilot, decisive_width(seen, margin, target_width), pairs_per_query, human_cost_per_pair))
    return plan


def holds_earlier_labels(corrected: Corrected | None) -> bool:
    """Whether the plan is for what the drawn queries will correct, the judge's labels with the human labels given
    before the draw in place: when the draw's prediction holds some, and three queries the earlier labels did not cover
    whole are labelled whole by now (those the earlier labels cover whole have nothing to correct, and would teach the
    plan a residual of zero). Else the plan is for the judge's labels alone, from every query labelled whole."""
    return (corrected is not None and bool(corrected.predictions)
            and len(corrected.labelled_since()) + len(corrected.after_the_draw()) >= MIN_HUMAN_QUERIES)


def _failed_by_humans(found: Estimate, queries: int, margin: float) -> str:
    return (f"the humans' own labels fail it already: {found.value:+.3f} ({found.ci_low:+.3f} to {found.ci_high:+.3f}) on the {queries} queries "
            f"they labelled any of (condensed lists), below -{margin:g}; rae gate fails it whatever a draw shows")


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def plan_row(what: str, pilot: Pilot, width: float, pairs_per_query: float, human_cost_per_pair: float) -> PlanRow:
    n = len(pilot.labelled)
    if n < MIN_HUMAN_QUERIES:
        return PlanRow(what, n, width, note=f"label {MIN_HUMAN_QUERIES} queries first (rae review queue --for-evaluation)")
    if width <= 1e-9:
        return PlanRow(what, n, width, note="the difference sits at the margin: no number of labels decides it")
    population = len(pilot.judge)
    residual = pilot.residual()
    if np.std(pilot.human) == 0:
        return PlanRow(what, n, width, note="no spread yet in the labelled queries: label more first")
    per_query = _residual_spread(residual, pilot.spread, pilot.labelled)
    shape = interval_shape(pilot.judge, pilot.human, np.ones(n), pilot.difference)
    queries = {
        HUMANS: _uniform_size(float(np.std(pilot.human, ddof=1)), population, width, shape),
        UNIFORM: _uniform_size(float(np.std(residual, ddof=1)), population, width, shape),
        STRATIFIED: _stratified_size(per_query, pilot.spread, width, shape, pilot.known),
    }
    left = np.setdiff1d(np.arange(population), pilot.known)  # the queries an active draw draws among, beside its census
    probabilities = active_probabilities(pilot.spread[left], pilot.even_share) if len(left) else np.array([])
    queries[ACTIVE] = _active_size(per_query[left], probabilities, population, width, shape)
    per_label = pairs_per_query * human_cost_per_pair
    return PlanRow(what, n, width, queries, {k: None if v is None else round(v * per_label, 2) for k, v in queries.items()})


def decisive_width(seen: float | None, margin: float | None, target_width: float) -> float:
    """The interval width that decides a gate: twice the distance from the difference seen so far to -margin."""
    if margin is None or seen is None:
        return target_width
    return 2 * abs(seen + margin)


def _residual_spread(residual: np.ndarray, spread: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Each evaluated query's residual spread as planned: its stratum's (by the judge's spread) where the pilot has
    three queries there, else the pooled one."""
    pooled = float(np.std(residual, ddof=1))
    names = list(range(len(spread)))
    strata = strata_of([str(i) for i in names], spread, 3 * MIN_PER_STRATUM)
    by = np.array([strata[str(i)] for i in names])
    result = np.full(len(spread), pooled)
    for stratum in np.unique(by):
        inside = by[labelled] == stratum
        if inside.sum() >= MIN_HUMAN_QUERIES:
            result[by == stratum] = float(np.std(residual[inside], ddof=1))
    return result


def _uniform_size(sd: float, population: int, width: float, shape: float | None) -> int | None:
    for n in range(MIN_HUMAN_QUERIES, population + 1):
        if planned_width(sd * math.sqrt(max(0.0, 1 - n / population)) / math.sqrt(n), scipy_stats.t.ppf(0.975, n - 1), shape, n) <= width:
            return n
    return None


def _stratified_size(per_query: np.ndarray, spread: np.ndarray, width: float, shape: float | None, known: np.ndarray) -> int | None:
    """The queries to label under the stratified design: strata of the judge's spread among the queries not labelled
    whole already, beside the census of those that are (known exactly: they add no noise and need no label)."""
    population = len(per_query)
    rest = np.setdiff1d(np.arange(population), known)
    if not len(rest):
        return 0
    ids = [str(i) for i in rest]
    for n in range(min(MIN_HUMAN_QUERIES, len(rest)), len(rest) + 1):  # below two strata of ten, one stratum: a uniform draw
        strata = strata_of(ids, spread[rest], n)
        sizes = neyman(strata, dict(zip(ids, spread[rest], strict=True)), n)
        by = np.array([strata[i] for i in ids])
        variance = sum((np.sum(by == s) / population) ** 2 * np.mean(per_query[rest][by == s] ** 2) * max(0.0, 1 - m / np.sum(by == s)) / m
                       for s, m in sizes.items())
        if planned_width(math.sqrt(variance), scipy_stats.t.ppf(0.975, max(1, n - len(sizes))), shape, n) <= width:
            return n
    return None


def _active_size(per_query: np.ndarray, probabilities: np.ndarray, population: int, width: float, shape: float | None) -> int | None:
    """The queries to draw under the active design (``--queries`` of its review queue) among the queries not labelled
    whole already (``per_query``'s residual spreads and ``probabilities`` are theirs), beside the census of those that
    are."""
    left = len(per_query)
    if not left:
        return 0
    for n in range(min(MIN_HUMAN_QUERIES, left), left + 1):
        chances = inclusion_probabilities(probabilities, n)
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = float(np.sum(np.where(chances < 1, (1 - chances) * per_query**2 / chances, 0.0))) / population**2
        if planned_width(math.sqrt(variance), scipy_stats.t.ppf(0.975, max(1, n - 1)), shape, n) <= width:
            return n
    return None

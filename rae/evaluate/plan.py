"""``rae plan``: how many queries must humans label to know an engine's metric to a given precision, with the judge
and without it, and what would that cost?

From the queries humans labelled so far: the spread of the per-query metric under human labels gives the humans-only
sample size for a 95% t interval of the target width (the smallest n with 2 * t(n - 1) * sd / sqrt(n) <= width); the correlation between the
judge's and the humans' per-query metric gives, through ``ppi_py``'s ``ppi_mean_power``, the cheapest pair (n queries
labelled by humans, N judged by the LLM) whose PPI interval is as narrow (the same effective sample size). A human
label costs ``human_cost_per_pair`` (settings) times the pairs of a query's pool; a judged query costs what the
evaluation's judgments cost. A free judge (the embedded model) is counted at 1/10,000 of a human label so that N stays
finite: judge as many queries as you have.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ppi_py.ppi_power_analysis import ppi_mean_power
from scipy import stats as scipy_stats

from rae.evaluate.corrected import Corrected, per_query_values
from rae.evaluate.metrics import EngineMetrics
from rae.evaluate.ppi import MIN_HUMAN_QUERIES

Z = 1.96
FREE_JUDGE_SHARE = 1e-4


@dataclass(frozen=True)
class PlanRow:
    what: str  # an engine, or "b - a" for a comparison
    labelled_now: int
    correlation: float | None
    humans_only_queries: int | None
    humans_only_cost: float | None
    ppi_human_queries: int | None
    ppi_judged_queries: int | None
    ppi_cost: float | None
    note: str = ""


@dataclass
class Plan:
    metric: str
    target_width: float
    pairs_per_query: float
    human_cost_per_pair: float
    judge_cost_per_query: float
    rows: list[PlanRow] = field(default_factory=list)
    margin: float | None = None  # for a gate: each difference needs the width that puts its interval clear of -margin

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "rows"}, "rows": [vars(r) for r in self.rows]}

    def markdown(self) -> str:
        aim = (f"For a decisive gate at margin {self.margin:g} (each difference's interval clear of -{self.margin:g}; engines "
               f"within {self.target_width:g})") if self.margin is not None else f"To know {self.metric} within a 95% interval {self.target_width:g} wide"
        lines = [
            f"{aim} (a human label costs "
            f"${self.human_cost_per_pair:g} a pair, {self.pairs_per_query:.1f} pairs a query; the judge ${self.judge_cost_per_query:.4f} a query)",
            "",
            "| engine | human-labelled queries now | correlation judge / humans | humans only: queries | cost | with the judge: human-labelled queries | judged queries | cost |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            if r.note:
                lines.append(f"| {r.what} | {r.labelled_now} | {r.note} | | | | | |")
                continue
            lines.append(
                f"| {r.what} | {r.labelled_now} | {r.correlation:.2f} | {r.humans_only_queries} | ${r.humans_only_cost:,.2f} | "
                f"{r.ppi_human_queries} | {r.ppi_judged_queries} | ${r.ppi_cost:,.2f} |"
            )
        return "\n".join(lines)


def plan_labels(
    corrected: Corrected, llm_metrics: dict[str, EngineMetrics], metric: str, target_width: float,
    pairs_per_query: float, human_cost_per_pair: float, judge_cost_per_query: float, margin: float | None = None,
) -> Plan:
    plan = Plan(metric, target_width, pairs_per_query, human_cost_per_pair, judge_cost_per_query, margin=margin)
    labelled = corrected.labelled_queries
    series = {e: (per_query_values(corrected.human_metrics[e], metric, labelled), per_query_values(llm_metrics[e], metric, labelled)) for e in llm_metrics}
    names = list(series)
    wanted = [(e, *series[e], target_width) for e in names]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            human = series[b][0] - series[a][0]
            wanted.append((f"{b} - {a}", human, series[b][1] - series[a][1], _decisive_width(human, margin, target_width)))
    for what, human, judge, width in wanted:
        plan.rows.append(_row(what, human, judge, plan, width))
    return plan


def _decisive_width(human_difference: np.ndarray, margin: float | None, target_width: float) -> float:
    """The interval width that decides a gate: twice the distance from the difference seen so far to -margin (a
    difference at the margin itself needs an interval of width zero: the plan says so)."""
    if margin is None or len(human_difference) == 0:
        return target_width
    return 2 * abs(float(np.mean(human_difference)) + margin)


def _t_sample_size(spread: float, width: float) -> int:
    """The queries a humans-only t interval (the one rae reports) needs to be ``width`` wide: the normal
    approximation's n, raised until t(n - 1) fits, since with a handful of queries t is much wider than z."""
    n = max(MIN_HUMAN_QUERIES, math.ceil((2 * Z * spread / width) ** 2))
    while 2 * scipy_stats.t.ppf(0.975, n - 1) * spread / math.sqrt(n) > width:
        n += 1
    return n


def _row(what: str, human: np.ndarray, judge: np.ndarray, plan: Plan, width: float) -> PlanRow:
    n = len(human)
    if n < MIN_HUMAN_QUERIES:
        return PlanRow(what, n, None, None, None, None, None, None, f"label {MIN_HUMAN_QUERIES} queries first (rae review queue --for-evaluation)")
    spread = float(np.std(human, ddof=1))
    if spread == 0 or np.std(judge) == 0:
        return PlanRow(what, n, None, None, None, None, None, None, "no spread yet in the labelled queries: label more first")
    if width <= 1e-9:
        return PlanRow(what, n, None, None, None, None, None, None, "the difference sits at the margin: no number of labels decides it")
    human_per_query = plan.human_cost_per_pair * plan.pairs_per_query
    classical = _t_sample_size(spread, width)
    judge_cost = max(plan.judge_cost_per_query, FREE_JUDGE_SHARE * human_per_query)
    best = ppi_mean_power(human, judge, human_per_query, judge_cost, effective_n=classical)
    return PlanRow(
        what, n, round(float(best["ppi_corr"]), 3), classical, round(classical * human_per_query, 2),
        int(best["n"]), int(best["N"]), round(float(best["cost"]), 2),
    )


"""Engine against engine, and LLM labels against human labels.

Two engines are compared on the same queries, so the test is paired: a two-sided randomization test on the per-query
differences (Fisher's, exact when there are few queries), with the effect size d_z = mean difference / standard
deviation of the differences, and the count of queries each engine wins.

The validity check asks whether LLM labels rank the engines as human labels do. On the queries that have human labels,
both label sets score the same lists, condensed to the products humans judged, so that only the labels differ; then
Kendall's tau between the two orders of engines, and for each pair of engines whether the verdict agrees.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, permutation_test

from rae.eval.metrics import EngineMetrics


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    difference: float  # b - a
    p_value: float
    effect_size: float  # d_z of b - a
    wins_a: int
    wins_b: int
    ties: int
    n_queries: int

    @property
    def verdict(self) -> str:
        if self.p_value >= 0.05:
            return "no significant difference"
        return f"{self.b if self.difference > 0 else self.a} is better"


def compare_engines(metrics: dict[str, EngineMetrics], metric: str, seed: int = 0) -> list[Comparison]:
    """Every pair of engines, in the given order, on one metric."""
    return [paired_comparison(a, b, metrics[a], metrics[b], metric, seed) for a, b in itertools.combinations(metrics, 2)]


def paired_comparison(a: str, b: str, metrics_a: EngineMetrics, metrics_b: EngineMetrics, metric: str, seed: int = 0) -> Comparison:
    joined = pd.concat([metrics_a.per_query[metric].rename("a"), metrics_b.per_query[metric].rename("b")], axis=1, join="inner").dropna()
    x, y = joined["a"].to_numpy(), joined["b"].to_numpy()
    differences = y - x
    return Comparison(
        a=a,
        b=b,
        metric=metric,
        mean_a=round(float(np.mean(x)), 4) if len(x) else float("nan"),
        mean_b=round(float(np.mean(y)), 4) if len(y) else float("nan"),
        difference=round(float(np.mean(differences)), 4) if len(x) else float("nan"),
        p_value=round(_paired_p_value(x, y, seed), 4),
        effect_size=round(_effect_size(differences), 3),
        wins_a=int(np.sum(differences < 0)),
        wins_b=int(np.sum(differences > 0)),
        ties=int(np.sum(differences == 0)),
        n_queries=len(x),
    )


def _paired_p_value(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    if len(x) < 2 or np.allclose(x, y):
        return 1.0
    result = permutation_test(
        (x, y),
        lambda u, v, axis: np.mean(v - u, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=10_000,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def _effect_size(differences: np.ndarray) -> float:
    if len(differences) < 2:
        return float("nan")
    spread = float(np.std(differences, ddof=1))
    if spread == 0:
        return 0.0 if np.mean(differences) == 0 else float("inf") * np.sign(np.mean(differences))
    return float(np.mean(differences)) / spread


@dataclass(frozen=True)
class Verdict:
    a: str
    b: str
    llm_difference: float
    human_difference: float

    @property
    def agrees(self) -> bool:
        return np.sign(self.llm_difference) == np.sign(self.human_difference)


@dataclass(frozen=True)
class Validity:
    metric: str
    n_queries: int
    llm: dict[str, float]  # engine -> mean metric under LLM labels, on the human-judged lists
    human: dict[str, float]  # engine -> mean metric under human labels
    human_judged: dict[str, float]  # engine -> judged@k by humans on the full lists
    kendall_tau: float
    verdicts: list[Verdict]

    @property
    def agreeing_verdicts(self) -> int:
        return sum(v.agrees for v in self.verdicts)


def validity_check(
    llm: dict[str, EngineMetrics], human: dict[str, EngineMetrics], human_judged: dict[str, float], metric: str
) -> Validity:
    names = list(llm)
    llm_means = {n: llm[n].mean(metric) for n in names}
    human_means = {n: human[n].mean(metric) for n in names}
    tau = float("nan")
    if len(names) >= 2:
        tau = float(kendalltau([llm_means[n] for n in names], [human_means[n] for n in names]).statistic)
    verdicts = [
        Verdict(a, b, round(llm_means[b] - llm_means[a], 4), round(human_means[b] - human_means[a], 4))
        for a, b in itertools.combinations(names, 2)
    ]
    n_queries = len(next(iter(human.values())).per_query) if human else 0
    return Validity(metric, n_queries, llm_means, human_means, human_judged, round(tau, 4), verdicts)

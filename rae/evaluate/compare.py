"""Engine against engine on the same queries.

The test is paired: a two-sided randomization test on the per-query differences (Fisher's, exact when there are few
queries), with the effect size d_z = mean difference / standard deviation of the differences, and the count of
queries each engine wins.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rae.evaluate.metrics import EngineMetrics
from rae.stats import paired_permutation_p


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
        p_value=round(paired_permutation_p(x, y, seed), 4),
        effect_size=round(_effect_size(differences), 3),
        wins_a=int(np.sum(differences < 0)),
        wins_b=int(np.sum(differences > 0)),
        ties=int(np.sum(differences == 0)),
        n_queries=len(x),
    )


def _effect_size(differences: np.ndarray) -> float:
    if len(differences) < 2:
        return float("nan")
    spread = float(np.std(differences, ddof=1))
    if spread == 0:
        return 0.0 if np.mean(differences) == 0 else float("inf") * np.sign(np.mean(differences))
    return float(np.mean(differences)) / spread

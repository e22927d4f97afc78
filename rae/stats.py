"""The statistics every table of rae shares: an estimate with its 95% interval, and the tests over queries.

Queries are the unit of sampling. The pairs of one query share guidelines and errors, so an interval that resampled
pairs would overstate the certainty: every interval here resamples queries (a cluster bootstrap), and every paired
test permutes within queries. Agreement, ablations and engine comparisons all call these, so a number means the same
thing in every table.
"""

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, permutation_test

TOO_FEW = "too few queries for an interval"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval. ``note`` says why the interval is missing, when it is (NaN bounds)."""

    value: float
    ci_low: float
    ci_high: float
    note: str = ""

    @property
    def has_interval(self) -> bool:
        return bool(np.isfinite(self.ci_low) and np.isfinite(self.ci_high))

    def __str__(self) -> str:
        if not np.isfinite(self.value):
            return f"n/a ({self.note})" if self.note else "n/a"
        if not self.has_interval:
            return f"{self.value:.3f} ({self.note or 'no interval'})"
        return f"{self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"

    def signed(self) -> str:
        """The same, with signs: for a difference."""
        if not np.isfinite(self.value):
            return "n/a"
        if not self.has_interval:
            return f"{self.value:+.3f} ({self.note or 'no interval'})"
        return f"{self.value:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}]"


def mean_with_ci(values: np.ndarray, seed: int = 0, n_resamples: int = 2000) -> Estimate:
    """The mean of per-query values with a percentile bootstrap interval; NaNs (undefined for a query) are left out."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), "no query has a value")
    mean = round(float(np.mean(values)), 4)
    if len(values) < 2:
        return Estimate(mean, float("nan"), float("nan"), TOO_FEW)
    if np.all(values == values[0]):
        return Estimate(mean, mean, mean)
    result = bootstrap((values,), np.mean, n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed))
    return Estimate(mean, round(float(result.confidence_interval.low), 4), round(float(result.confidence_interval.high), 4))


def query_bootstrap(
    n_queries: int, statistic: Callable[[np.ndarray], np.ndarray], n_resamples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point values and 95% percentile bounds of ``statistic(query indices)``, resampling whole queries.

    ``statistic`` takes an array of query indices (with repeats) and returns a vector of numbers, so several metrics
    share one resampling. With fewer than two queries the bounds are NaN (see ``TOO_FEW``).
    """
    point = np.asarray(statistic(np.arange(n_queries)), dtype=float)
    if n_queries < 2:
        return point, np.full(point.shape, np.nan), np.full(point.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bootstrap(
            (np.arange(n_queries),),
            statistic,
            vectorized=False,
            n_resamples=n_resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return point, np.asarray(result.confidence_interval.low, dtype=float), np.asarray(result.confidence_interval.high, dtype=float)


def estimates(names: Sequence[str], point: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, Estimate]:
    """Named estimates from aligned vectors, rounded; a NaN bound says why."""
    return {
        name: Estimate(
            round(float(point[i]), 4),
            round(float(low[i]), 4),
            round(float(high[i]), 4),
            "" if np.isfinite(low[i]) and np.isfinite(high[i]) else TOO_FEW,
        )
        for i, name in enumerate(names)
    }


def paired_permutation_p(per_query_a: np.ndarray, per_query_b: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value that the mean per-query difference B - A is zero, swapping each query's two values at random
    (Fisher's randomization test; exact when there are few queries)."""
    a, b = np.asarray(per_query_a, dtype=float), np.asarray(per_query_b, dtype=float)
    if len(a) < 2 or np.allclose(a, b):
        return 1.0
    result = permutation_test(
        (a, b),
        lambda u, v, axis: np.mean(v - u, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=10_000,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def grouped_permutation_p(
    n_queries: int, difference: Callable[[np.ndarray], float], n_resamples: int = 2000, seed: int = 0
) -> float:
    """Two-sided p-value of a paired difference between two variants judged on the same queries.

    ``difference(swaps)`` computes the statistic (say, kappa of B minus kappa of A on all pairs) after swapping the
    two variants' outputs on the queries where ``swaps`` is True. Under the null hypothesis the variants are
    exchangeable within a query, so every swap pattern is as likely as the observed one. With few queries every
    pattern is enumerated (an exact test); otherwise ``n_resamples`` random patterns are drawn.
    """
    observed = difference(np.zeros(n_queries, dtype=bool))
    if n_queries < 1 or not np.isfinite(observed):
        return float("nan")
    if n_queries <= 12:
        patterns = ((np.arange(2**n_queries)[:, None] >> np.arange(n_queries)) & 1).astype(bool)
    else:
        patterns = np.random.default_rng(seed).random((n_resamples, n_queries)) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        null = np.array([difference(swaps) for swaps in patterns])
    null = null[np.isfinite(null)]
    if len(null) == 0:
        return float("nan")
    return float(np.mean(np.abs(null) >= abs(observed) - 1e-12))

"""A point estimate with its 95% interval, and the bootstrap that gives one for a mean over queries."""

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"


def mean_with_ci(values: np.ndarray, seed: int = 0, n_resamples: int = 2000) -> Estimate:
    """The mean of per-query values with a percentile bootstrap interval; NaNs (undefined for a query) are left out."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    mean = round(float(np.mean(values)), 4)
    if len(values) < 2 or np.all(values == values[0]):
        return Estimate(mean, mean, mean)
    result = bootstrap((values,), np.mean, n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed))
    return Estimate(mean, round(float(result.confidence_interval.low), 4), round(float(result.confidence_interval.high), 4))

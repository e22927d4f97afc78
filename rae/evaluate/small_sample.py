"""The interval of every estimate that human labels correct, built to hold with ten labelled queries.

A team labels ten or twenty queries, not hundreds, and at that size the textbook intervals under-cover: ``ppi_py``'s
is a z interval whose spread is a ``ddof=0`` standard deviation, and the spread of a per-query metric is skewed
(nDCG piles up near 1 with a long tail of failed queries, which a sample of ten often misses). Three things repair it,
each a standard small-sample tool:

- **the delete-one jackknife** of the whole estimator (Quenouille, Tukey): for a plain mean it is the usual standard
  error; for a corrected one it also counts the noise of the weight (lam) that was fitted on the same ten queries,
  which a plug-in formula takes as known; within strata it is the stratified jackknife;
- **Student's t**, its degrees of freedom Satterthwaite's for a sum of stratum variances (n - 1 for one stratum; as few
  as a small stratum's when its variance dominates);
- **Hall's transformation** (Hall 1992, "On the removal of skewness by transformation"; Johnson 1978's modified t
  made monotone), so the interval reaches further on the side of the tail. Its skewness is the per-query metric's
  over every evaluated query as the judge's labels show it, when the caller knows it: ten labelled queries that miss
  the tail of failed queries show no skewness at all, and those are exactly the draws whose interval sits too high,
  while the judge's metric is known on all N and has the lists' shape (a short list, a query with nothing relevant)
  whatever its labels. Without it (a judge whose metric is flat: a click log that showed none of the products) the
  skewness is a Beta distribution's on the metric's range with the draws' mean and variance (``range_skewness``),
  steadier than the ten draws' own third moment, which under-covered (0.927 at n = 10); the jackknife's (Efron's
  acceleration) is left for values of no known range. Either can be
  wrong in sign, so the interval kept is the union of the corrected one and the symmetric t one; and either can be far
  too large (one failed query among ten), where the inverse of Hall's cubic grows without bound, so the correction is
  capped at a = 1 / (4 t): the tail side reaches at most about 1.6 times the t half-width.

``finite`` is each draw's finite-population correction, 1 - its probability of being drawn (1 - n_h / N_h in a
stratum of equal probabilities): the estimand is the humans' metric over the evaluated queries (what labelling every
pool would give), a finite population sampled without replacement. Scaling each draw's jackknife deviation by it is
Hajek's (1964) approximation of the variance of a draw of unequal probabilities without replacement, which holds for
a draw as random as its size and chances allow, as the active design's Pareto sampling is (``rae.evaluate.designs``).
A draw with replacement (an older rae's active design) has none.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from rae.stats import Estimate

ALPHA = 0.05


@dataclass(frozen=True)
class Replicates:
    """An estimate and, per stratum, the estimate with each of its labelled draws left out in turn, and each draw's
    finite-population correction; and the skewness of the per-query values it averages, over every evaluated query,
    when the judge shows it."""

    value: float
    by_stratum: list[np.ndarray]
    finite: list[np.ndarray]  # per stratum, per draw: 1 - its probability of being drawn (0: certain; 1: with replacement)
    skewness: float | None = None

    @property
    def n(self) -> int:
        """The draws that carry noise: a query taken for certain is known exactly."""
        return int(sum(np.sum(f > 0) for f in self.finite))

    def missing(self) -> bool:
        """Whether a stratum that carries noise has fewer than two labelled draws (none at all: its draws are missing,
        not certain), so that its spread cannot be estimated."""
        return not self.by_stratum or any(len(r) < 2 and not (len(f) and np.all(f == 0)) for r, f in zip(self.by_stratum, self.finite, strict=True))


def jackknife_interval(replicates: Replicates, alpha: float = ALPHA) -> Estimate:
    """The 95% interval described above; no interval (with the reason) when a stratum has a single labelled draw."""
    value = replicates.value
    if replicates.missing():
        return Estimate(round(value, 4), float("nan"), float("nan"), "a stratum with fewer than two labelled queries")
    by_stratum = [np.sqrt(f * (len(r) - 1) / len(r)) * (r.mean() - r) for r, f in zip(replicates.by_stratum, replicates.finite, strict=True)]
    deviations = np.concatenate(by_stratum)
    variance = float(np.sum(deviations**2))
    if variance <= 1e-18:
        return Estimate(round(value, 4), round(value, 4), round(value, 4))
    se = np.sqrt(variance)
    df = _satterthwaite([float(np.sum(d**2)) for d in by_stratum], [int(np.sum(f > 0)) for f in replicates.finite])  # a certain draw adds no freedom
    quantile = float(scipy_stats.t.ppf(1 - alpha / 2, df))
    if replicates.skewness is None:
        a = 2 * float(np.sum(deviations**3) / (6 * variance**1.5))  # twice Efron's acceleration: skewness / (3 sqrt n)
    else:
        a = hall_a(replicates.skewness, replicates.n)
    low, high = skewed_ends(value, se, quantile, a)
    return Estimate(round(value, 4), round(low, 4), round(high, 4))


def range_skewness(values: np.ndarray, weights: np.ndarray, low: float, high: float) -> float | None:
    """The skewness of a Beta distribution on [low, high] with the draws' weighted mean and variance: the shape of a
    bounded metric when no judge shows it. Ten draws' third moment is mostly noise; their first two, with the range
    the metric cannot leave, say which side the tail is on (a mean near 1 of nDCG leaves room for a tail only below)
    and how long it can be. None when the draws do not vary or sit at an end of the range."""
    values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    if len(values) < 2 or weights.sum() <= 0:
        return None
    share = weights / weights.sum()
    scaled = (values - low) / (high - low)
    mean = float(share @ scaled)
    variance = float(share @ (scaled - mean) ** 2) * len(values) / (len(values) - 1)
    if variance <= 1e-12 or not 0 < mean < 1:
        return None
    size = max(mean * (1 - mean) / variance - 1, 1e-3)  # alpha + beta; at most the range allows, never negative
    alpha, beta = mean * size, (1 - mean) * size
    return float(2 * (beta - alpha) * np.sqrt(size + 1) / ((size + 2) * np.sqrt(alpha * beta)))


def hall_a(skewness: float, n: int) -> float:
    """Hall's a for the mean of n draws from values of this skewness."""
    return skewness / (3 * np.sqrt(n))


def skewed_ends(value: float, se: float, quantile: float, a: float) -> tuple[float, float]:
    """The ends of the interval: Hall's, its a capped, joined with the symmetric t interval."""
    bound = 1 / (4 * quantile)  # past it Hall's inverse stretches without limit, on a skewness that ten values misread
    low, high = _hall(value, se, quantile, float(np.clip(a, -bound, bound)))
    return min(low, value - quantile * se), max(high, value + quantile * se)


def planned_width(se: float, quantile: float, skewness: float | None, n: int) -> float:
    """The width this interval will have for a standard error and n labelled draws, when the shape it takes its tail
    from is known (``rae plan``: the t width alone would promise an interval up to 30% narrower)."""
    low, high = skewed_ends(0.0, se, quantile, 0.0 if skewness is None else hall_a(skewness, n))
    return high - low


def _satterthwaite(variances: list[float], sizes: list[int]) -> float:
    """The degrees of freedom of a sum of stratum variances (Satterthwaite 1946): n - 1 for one stratum, and as few as
    the smallest stratum's when its variance dominates (a stratum of two labelled queries gives one)."""
    spread = sum(v**2 / max(m - 1, 1) for v, m in zip(variances, sizes, strict=True) if v > 0)  # a stratum taken whole adds nothing
    return max(1.0, sum(variances) ** 2 / spread) if spread > 0 else float(sum(sizes) - len(sizes))


def _hall(value: float, se: float, quantile: float, a: float) -> tuple[float, float]:
    """Invert Hall's g(t) = t + a t^2 + a^2 t^3 / 3 + a / 2, with a = skewness / (3 sqrt n) of the studentized mean;
    g is monotone, so the interval always exists."""

    def inverse(g: float) -> float:
        if abs(a) < 1e-9:
            return g - a / 2
        return float((np.cbrt(1 + 3 * a * (g - a / 2)) - 1) / a)

    ends = value - se * inverse(quantile), value - se * inverse(-quantile)
    return min(ends), max(ends)

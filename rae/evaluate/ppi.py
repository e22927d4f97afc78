"""Prediction-powered inference: an engine's metric from every query the judge labelled, corrected by the few queries
humans labelled, with an interval that holds whatever the judge's quality (Angelopoulos et al., Science 2023; PPI++
with power tuning, arXiv 2311.01453). The formulas are ``ppi_py``'s; this module only shapes rae's numbers for them.

For one engine and one metric: ``llm`` holds the per-query metric under the judge's labels on all N evaluated
queries; ``human`` and ``llm_on_human`` hold it under human and judge labels on the n queries humans labelled (the
same lists, so they differ only by the labels). The PPI++ estimate is  lam * mean_N(llm) + mean_n(human - lam * llm)
with lam chosen from the data to make the interval as narrow as it can be (lam = 0 is the humans-only estimate;
the estimate is never worse than it, up to noise). The N queries include the n: they are the whole population the
evaluation asks about, and the n are a sample of it, so the correction is unbiased (the variance formula treats the
two means as independent, which slightly overstates it: the interval errs on the safe side).

Beside it, the two estimates a team would otherwise quote: the judge alone (all N queries, bootstrap over queries;
its interval ignores the judge's own error) and humans alone (the n queries, a t interval). ``effective_n`` says how
many human-labelled queries the humans-only estimate would need to be as precise as the PPI one.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from ppi_py import classical_mean_ci, ppi_mean_ci, ppi_mean_pointestimate
from scipy import stats as scipy_stats

from rae.stats import Estimate, mean_with_ci

ALPHA = 0.05
MIN_HUMAN_QUERIES = 3  # fewer, and no interval from them means anything


@dataclass(frozen=True)
class ThreeEstimates:
    """One metric of one engine (or one difference between two engines): the judge alone, humans alone, PPI."""

    llm_only: Estimate  # mean over all N queries under the judge's labels, bootstrap CI over queries
    humans_only: Estimate  # mean over the n human-labelled queries, t interval
    ppi: Estimate  # prediction-powered (PPI++) estimate and interval
    n_queries: int  # N
    n_human: int  # n
    effective_n: float | None  # human-labelled queries the humans-only interval would need to be as narrow as PPI's
    lam: float | None  # the power-tuning weight (0: the judge's labels did not help)
    p_value: float | None = None  # PPI p-value that the mean is 0 (for a difference between engines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm_only": vars(self.llm_only),
            "humans_only": vars(self.humans_only),
            "ppi": vars(self.ppi),
            "n_queries": self.n_queries,
            "n_human": self.n_human,
            "effective_n": self.effective_n,
            "lam": self.lam,
            "p_value": self.p_value,
        }


def three_estimates(llm: np.ndarray, human: np.ndarray, llm_on_human: np.ndarray, weights: np.ndarray | None = None, difference: bool = False) -> ThreeEstimates:
    """The three estimates of a mean. ``weights`` (one per human-labelled query) are inverse inclusion
    probabilities when the human-labelled queries were sampled with unequal probabilities (stratified)."""
    llm, human, llm_on_human = (np.asarray(a, dtype=float) for a in (llm, human, llm_on_human))
    llm_only = mean_with_ci(llm)
    n = len(human)
    humans_only, ppi, lam = humans_and_ppi(human, llm_on_human, llm, weights)
    if n < MIN_HUMAN_QUERIES:
        return ThreeEstimates(llm_only, humans_only, ppi, len(llm), n, None, None)
    effective = _effective_n(n, humans_only, ppi)
    p_value = _p_value(ppi, n) if difference else None
    return ThreeEstimates(
        llm_only, humans_only, ppi, len(llm), n, effective, None if lam is None else round(lam, 4), None if p_value is None else round(p_value, 4)
    )


def humans_and_ppi(
    human: np.ndarray, llm_on_human: np.ndarray, llm: np.ndarray, weights: np.ndarray | None = None
) -> tuple[Estimate, Estimate, float | None]:
    """The humans-only estimate, the PPI estimate, and PPI's lam (see ``three_estimates``)."""
    if len(human) < MIN_HUMAN_QUERIES:
        missing = Estimate(float("nan"), float("nan"), float("nan"), f"{len(human)} human-labelled queries: too few for an interval")
        return missing, missing, None
    ppi, lam = _ppi(human, llm_on_human, llm, weights)
    return _classical(human, weights), ppi, lam


def _classical(human: np.ndarray, weights: np.ndarray | None) -> Estimate:
    mean = float(np.average(human, weights=weights))
    if np.all(human == human[0]):
        return Estimate(round(mean, 4), round(mean, 4), round(mean, 4))
    if weights is None:  # a t interval: with ten queries, the z interval of ppi_py would under-cover
        low, high = scipy_stats.t.interval(1 - ALPHA, len(human) - 1, loc=mean, scale=scipy_stats.sem(human))
    else:
        low, high = classical_mean_ci(human, w=weights, alpha=ALPHA)
    return Estimate(round(mean, 4), round(float(low), 4), round(float(high), 4))


def _ppi(human: np.ndarray, llm_on_human: np.ndarray, llm: np.ndarray, weights: np.ndarray | None) -> tuple[Estimate, float | None]:
    """PPI++'s estimate and interval, with ``ppi_py``'s own power tuning (lam=None), and the lam it chose. A judge whose
    metric is the same on every human-labelled query carries no information about the humans' (lam = 0)."""
    lam = 0.0 if np.all(llm_on_human == llm_on_human[0]) else None
    point = float(np.ravel(ppi_mean_pointestimate(human, llm_on_human, llm, lam=lam, w=weights))[0])
    low, high = ppi_mean_ci(human, llm_on_human, llm, alpha=ALPHA, lam=lam, w=weights)
    low, high = _t_widened(point, float(np.ravel(low)[0]), float(np.ravel(high)[0]), len(human))
    return Estimate(round(point, 4), round(low, 4), round(high, 4)), lam if lam is not None else _lam_of(point, human, llm_on_human, llm, weights)


def _lam_of(point: float, human: np.ndarray, llm_on_human: np.ndarray, llm: np.ndarray, weights: np.ndarray | None) -> float | None:
    """The lam behind a power-tuned estimate. The estimate is lam * (mean_N(llm) - mean_n(llm)) + mean_n(human), so
    lam follows from it; None when the two means of the judge's metric coincide (lam then does not matter)."""
    gap = float(np.mean(llm) - np.average(llm_on_human, weights=weights))
    return None if abs(gap) < 1e-12 else (point - float(np.average(human, weights=weights))) / gap


def _t_widened(point: float, low: float, high: float, n: int) -> tuple[float, float]:
    """``ppi_py``'s interval is z-based; with a few dozen human-labelled queries that under-covers. Its half-width is
    scaled by t(n - 1) / z, as the humans-only interval uses t."""
    z, t = scipy_stats.norm.ppf(1 - ALPHA / 2), scipy_stats.t.ppf(1 - ALPHA / 2, n - 1)
    return float(point - (point - low) * t / z), float(point + (high - point) * t / z)


def _p_value(ppi: Estimate, n: int) -> float:
    """The two-sided p-value that the mean is 0, from the same t(n - 1) distribution as the interval, so that a
    difference is significant at 5% when its 95% interval leaves out 0, up to the rounding of its ends (``ppi_py``'s own p-value is z-based
    and would call significant what the t interval does not)."""
    t = scipy_stats.t.ppf(1 - ALPHA / 2, n - 1)
    se = (ppi.ci_high - ppi.ci_low) / (2 * t)
    if se <= 0:
        return 1.0 if ppi.value == 0 else 0.0
    return float(2 * scipy_stats.t.sf(abs(ppi.value) / se, n - 1))


def _effective_n(n: int, humans_only: Estimate, ppi: Estimate) -> float | None:
    """n times the ratio of the squared widths: the humans-only sample size that would match PPI's precision."""
    human_width, ppi_width = humans_only.ci_high - humans_only.ci_low, ppi.ci_high - ppi.ci_low
    if not (humans_only.has_interval and ppi.has_interval) or ppi_width <= 0:
        return None
    return round(n * (human_width / ppi_width) ** 2, 1)


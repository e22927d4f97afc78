"""Prediction-powered inference by design: an engine's metric from every query the judge labelled, corrected by the
queries humans labelled whole, drawn by a design rae knows (Angelopoulos et al., Science 2023; PPI++ power tuning,
arXiv 2311.01453; stratified PPI, Fisch et al., arXiv 2406.04291; active inference with inverse-probability weights,
Zrnic and Candès, arXiv 2403.03208).

The estimand is the humans' metric over the N evaluated queries: what labelling every pool would give. The judge's
metric is known on all N; humans labelled a sample of them, and the estimate is the judge's mean plus the design-
weighted mean of the humans-minus-judge differences on the sample:

    lam * mean_N(judge) + sum_j w_j * (human_j - lam * judge_j)

with w_j = W_h / n_h for a query drawn in stratum h (W_h = N_h / N; a uniform draw is one stratum) and, for a query
drawn with probability pi_j (the active design), w_j = W_h (1 / pi_j) / sum_k (1 / pi_k) over the stratum's draws:
Hajek's normalised inverse-probability weights. Horvitz and Thompson's unnormalised 1 / (N pi_j) is exactly
unbiased, but the differences it weighs are not centred (with lam below 1 they hold (1 - lam) times the metric
itself), so the spread of 1 / pi_j enters the estimate as noise however well the judge predicts; the normalised form
spreads only the residual, and its bias, of order 1 / n, is the jackknife's to count (docs/ppi.md). Each draw's
finite-population correction is 1 - pi_j, its chance of being drawn (Hajek's approximation for a draw without
replacement of unequal probabilities: 1 - n_h / N_h in a stratum of equal ones, 0 for a query taken for certain), and
1 for an older rae's active draw, made with replacement, whose p_j are per draw. lam, between
0 and 1, weighs the judge: the design-weighted slope of the humans' metric on the judge's, over the judge's spread on
all N, so a judge that says nothing gets lam near 0 and the estimate falls back to the humans' own. lam comes from
labels outside the sample when there are enough (then it costs nothing: any lam fixed before the draw keeps the
estimate unbiased), else from the sample itself, and the jackknife then counts its noise. The humans-only estimate
is the same with lam = 0. The interval is ``rae.evaluate.small_sample``'s.

Only a sample rae can vouch for corrects the judge: queries drawn at random (``rae review queue --for-evaluation``),
whose pools were then labelled whole. Queries that happen to be fully labelled are a sample selected by the engines'
own lists (an engine that leaves the labelled pool drops its queries out of it); ``rae.evaluate.found_labels`` says
what such labels can still show.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

from rae.evaluate.small_sample import ALPHA, Replicates, jackknife_interval, range_skewness
from rae.stats import Estimate, mean_with_ci

MIN_HUMAN_QUERIES = 3  # fewer, and no interval from them means anything
SHRINK = 1.0  # lam is shrunk by max(0, 1 - SHRINK / t^2), t the slope's jackknife t: a judge that says nothing gets 0
MIN_FOR_OUTSIDE_LAM = 10  # labelled queries outside the sample that may fit lam instead of the sample itself
UNIFORM, STRATIFIED, ACTIVE = "uniform", "stratified", "active"
KNOWN = "known"  # the stratum a stratified or active draw takes whole: the queries labelled whole before it
CERTAIN = "certain"  # the active draw's queries whose chance reached 1: drawn for certain, a stratum taken whole
METRIC_RANGE, DIFFERENCE_RANGE = (0.0, 1.0), (-1.0, 1.0)  # every metric rae computes is a share or nDCG


@dataclass(frozen=True)
class Sample:
    """The labelled draws: each one's position among the N evaluated queries (an older rae's active draw, made with
    replacement, may repeat one), its stratum, and, for the active design, the probability it was drawn with."""

    design: str
    positions: np.ndarray
    strata: np.ndarray
    stratum_sizes: dict[str, int]
    probabilities: np.ndarray | None = None
    replacement: bool = False  # an older rae's active draw: ``probabilities`` per draw, and no finite-population correction

    @classmethod
    def uniform(cls, positions: np.ndarray | list[int], population: int) -> "Sample":
        positions = np.asarray(positions, dtype=int)
        return cls(UNIFORM, positions, np.full(len(positions), "all"), {"all": population})

    @property
    def population(self) -> int:
        return int(sum(self.stratum_sizes.values()))

    @property
    def n(self) -> int:
        return len(self.positions)

    def weights(self) -> np.ndarray:
        """The design weight of each draw and, in the rows below, of each draw with one left out (row i + 1 leaves
        draw i out): what every estimate and its jackknife replicates are made of."""
        n, population = self.n, self.population
        rows = np.ones((n + 1, n), dtype=bool)
        rows[np.arange(1, n + 1), np.arange(n)] = False
        weights = np.zeros((n + 1, n))
        for stratum in np.unique(self.strata):
            members = self.strata == stratum
            share = self.stratum_sizes[str(stratum)] / population
            # Within a stratum of unequal probabilities, each draw weighs 1 / p (Hajek's normalised form); within one of
            # equal ones, all weigh the same. Either way a stratum's weights sum to its share of the evaluated queries.
            raw = rows[:, members] / self.probabilities[None, members] if self._unequal(stratum) else rows[:, members].astype(float)
            total = raw.sum(axis=1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                weights[:, members] = np.where(total > 0, raw * share / total, 0.0)
        return weights

    def _unequal(self, stratum: object) -> bool:
        """Whether a stratum's queries were drawn each with its own probability: the active design's, beside the
        strata it takes whole (the queries labelled whole before the draw, and those its chances made certain)."""
        return self.design == ACTIVE and stratum not in (KNOWN, CERTAIN)

    def finite(self) -> np.ndarray:
        """Each draw's finite-population correction, 1 - its probability of being drawn: its own in the active design
        (none in an older rae's, drawn with replacement), n_h / N_h in a stratum of equal probabilities, n_h its
        labelled draws (a drawn query left unlabelled is missing, not certain), and 0 in a stratum taken whole."""
        finite = np.ones(self.n)
        for stratum, size in self.stratum_sizes.items():
            members = self.strata == stratum
            if self._unequal(stratum):
                finite[members] = 1.0 if self.replacement else np.clip(1 - self.probabilities[members], 0.0, 1.0)
            else:
                finite[members] = max(0.0, 1 - int(members.sum()) / size)
        return finite

    def sampled(self) -> np.ndarray:
        """Whether each draw carries noise: a query taken for certain (the queries labelled whole before the draw, or
        one the active design could not miss) is known exactly, and nothing about the judge's weight is learnt from it."""
        return self.finite() > 0


@dataclass(frozen=True)
class ThreeEstimates:
    """One metric of one engine (or one difference between two engines): the judge alone, humans alone, PPI."""

    llm_only: Estimate  # mean over all N queries under the judge's labels, bootstrap CI over queries
    humans_only: Estimate  # the design's estimate from the human labels alone
    ppi: Estimate  # the judge corrected by the human labels
    n_queries: int  # N
    n_human: int  # labelled draws
    effective_n: float | None  # labelled queries the humans-only interval would need to be as narrow as PPI's
    lam: float | None  # the judge's weight (0: its labels did not help)
    p_value: float | None = None  # that the mean is 0, from the same interval (for a difference between engines)
    design: str = UNIFORM
    lam_from: str = "sample"  # "sample", or "outside" (labels outside the sample fitted it)

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm_only": vars(self.llm_only), "humans_only": vars(self.humans_only), "ppi": vars(self.ppi),
            "n_queries": self.n_queries, "n_human": self.n_human, "effective_n": self.effective_n, "lam": self.lam,
            "p_value": self.p_value, "design": self.design, "lam_from": self.lam_from,
        }


def three_estimates(judge: np.ndarray, human: np.ndarray, sample: Sample, lam: float | None = None, difference: bool = False,
                    predictor: np.ndarray | None = None) -> ThreeEstimates:
    """The three estimates of a mean over the N evaluated queries. ``judge`` holds the judge's per-query metric on
    all N; ``human`` the humans' on each labelled draw of ``sample``; ``lam`` a weight fitted outside the sample.
    ``predictor``, when given, is what the humans correct instead of the judge's metric: the judge's with the human
    labels known before the draw in its place (``rae.evaluate.corrected``), fixed before the draw as PPI needs."""
    judge, human = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    predictor = judge if predictor is None else np.asarray(predictor, dtype=float)
    llm_only = mean_with_ci(judge)
    humans_only, ppi, used = humans_and_ppi(predictor, human, sample, lam, difference=difference)
    if sample.n < MIN_HUMAN_QUERIES or not ppi.has_interval:
        return ThreeEstimates(llm_only, humans_only, ppi, len(judge), sample.n, None, None, design=sample.design)
    p_value = _p_value(predictor, human, sample, lam) if difference else None
    return ThreeEstimates(llm_only, humans_only, ppi, len(judge), sample.n, _effective_n(sample.n, humans_only, ppi), round(used, 4),
                          p_value, sample.design, "sample" if lam is None else "outside")


def humans_and_ppi(judge: np.ndarray, human: np.ndarray, sample: Sample, lam: float | None = None, alpha: float = ALPHA,
                   difference: bool = False) -> tuple[Estimate, Estimate, float]:
    """The humans-only estimate, the corrected one, and the lam it used. ``difference``: the values are differences of
    two engines' metric, in [-1, 1] (an engine's own lies in [0, 1]), which shapes the interval when the judge cannot."""
    if sample.n < MIN_HUMAN_QUERIES:
        missing = Estimate(float("nan"), float("nan"), float("nan"), f"{sample.n} human-labelled queries: too few for an interval")
        return missing, missing, 0.0
    weights = sample.weights()
    on_sample = judge[sample.positions]
    lams = np.zeros(len(weights)) if lam is None else np.full(len(weights), lam)
    if lam is None:
        lams = fitted_lam(human, on_sample, weights * sample.sampled()[None, :], float(np.var(judge, ddof=1)) if len(judge) > 1 else 0.0)
    shape = interval_shape(judge, human, weights[0], difference)
    humans_only = jackknife_interval(_replicates(weights @ human, sample, shape), alpha)
    corrected = lams * float(np.mean(judge)) + np.sum(weights * (human[None, :] - lams[:, None] * on_sample[None, :]), axis=1)
    return humans_only, jackknife_interval(_replicates(corrected, sample, shape), alpha), float(lams[0])


def interval_shape(judge: np.ndarray, human: np.ndarray, weights: np.ndarray, difference: bool) -> float | None:
    """The skewness the interval takes its tail from: the judge's metric's over every evaluated query, else (a judge
    whose metric is flat) a Beta distribution's on the metric's range with the labelled draws' weighted mean and
    variance (``rae.evaluate.small_sample``)."""
    shape = skewness(judge)
    if shape is None:
        shape = range_skewness(human, weights, *(DIFFERENCE_RANGE if difference else METRIC_RANGE))
    return shape


def skewness(judge: np.ndarray) -> float | None:
    """The skewness of the judge's per-query metric over every evaluated query: the shape the interval takes its tail
    from (``rae.evaluate.small_sample``); None when the judge's metric does not vary (a judge that labelled nothing)."""
    if len(judge) < 3 or not np.all(np.isfinite(judge)) or float(np.std(judge)) <= 1e-12:
        return None
    return float(scipy_stats.skew(judge))


def fitted_lam(human: np.ndarray, judge: np.ndarray, weights: np.ndarray, judge_spread: float) -> np.ndarray:
    """The judge's weight for each row of ``weights``: the weighted covariance of the humans' and the judge's metric
    over the judge's variance on every evaluated query (PPI++'s power tuning, without its term for the judge's own
    sampling, since the estimand is the evaluated queries), shrunk by max(0, 1 - SHRINK / t^2) and kept in [0, 1].

    t is that weight over its own delete-one jackknife standard error, not the regression formula's t: at ten queries
    one query that both the humans and the judge call a failure makes the formula's t large and carries most of the
    covariance, and leaving each query out in turn sees that the weight rests on that one."""
    if judge_spread <= 1e-12:
        return np.zeros(len(weights))
    slope = _covariances(human, judge, weights) / judge_spread
    drawn = weights > 0
    left_out = weights[:, None, :] * (1 - np.eye(weights.shape[1]))[None, :, :]  # row r without draw i, for every i
    without = np.where(drawn, _covariances(human, judge, left_out) / judge_spread, 0.0)
    m = drawn.sum(axis=1)
    mean_without = without.sum(axis=1, keepdims=True) / np.maximum(m, 1)[:, None]
    spread = (m - 1) / np.maximum(m, 1) * np.sum(np.where(drawn, (without - mean_without) ** 2, 0.0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = np.where(spread > 1e-18, slope**2 / spread, np.inf)
        shrink = np.clip(1 - SHRINK / np.maximum(t2, 1e-12), 0.0, 1.0)
    return np.clip(np.nan_to_num(shrink * slope), 0.0, 1.0)


def _covariances(human: np.ndarray, judge: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted covariance of the humans' and the judge's metric for each row of ``weights`` (the last axis runs
    over the labelled draws)."""
    total = weights.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, weights / total, 0.0)
    mean_h = (share * human).sum(axis=-1, keepdims=True)
    mean_j = (share * judge).sum(axis=-1, keepdims=True)
    return (share * (human - mean_h) * (judge - mean_j)).sum(axis=-1)


def outside_lam(human: np.ndarray, judge_on_human: np.ndarray, judge: np.ndarray) -> float | None:
    """lam fitted on labelled queries outside the sample (its value then does not depend on the sample, so it adds no
    noise the interval has to count); None when there are too few of them."""
    if len(human) < MIN_FOR_OUTSIDE_LAM:
        return None
    weights = np.full((1, len(human)), 1 / len(human))
    return float(fitted_lam(np.asarray(human, float), np.asarray(judge_on_human, float), weights, float(np.var(judge, ddof=1)))[0])


def _replicates(values: np.ndarray, sample: Sample, shape: float | None) -> Replicates:
    """Row 0 is the estimate; row i + 1 the estimate without draw i, grouped by the draw's stratum (every stratum of
    the design: one nobody drew in leaves the estimate without an interval)."""
    finite, left_out = sample.finite(), values[1:]
    return Replicates(float(values[0]), [left_out[sample.strata == s] for s in sample.stratum_sizes],
                      [finite[sample.strata == s] for s in sample.stratum_sizes], shape)


def _p_value(judge: np.ndarray, human: np.ndarray, sample: Sample, lam: float | None) -> float:
    """The smallest level at which the interval leaves out 0, so that a difference is significant at 5% exactly when
    its 95% interval leaves out 0."""

    def excludes(alpha: float) -> float:
        _, ppi, _ = humans_and_ppi(judge, human, sample, lam, alpha, difference=True)
        return max(ppi.ci_low, -ppi.ci_high)  # > 0 when 0 lies outside

    if excludes(0.999) <= 0:
        return 1.0
    if excludes(1e-6) > 0:
        return 0.0
    return round(float(optimize.brentq(excludes, 1e-6, 0.999, xtol=1e-5)), 4)


def _effective_n(n: int, humans_only: Estimate, ppi: Estimate) -> float | None:
    """n times the ratio of the squared widths: the humans-only sample size that would match PPI's precision."""
    human_width, ppi_width = humans_only.ci_high - humans_only.ci_low, ppi.ci_high - ppi.ci_low
    if not (humans_only.has_interval and ppi.has_interval) or ppi_width <= 0:
        return None
    return round(n * (human_width / ppi_width) ** 2, 1)

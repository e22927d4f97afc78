"""Prediction-powered estimates: honest where the judge is biased, unbiased under a stratified draw when weighted."""

import numpy as np
import pytest

from rae.evaluate.ppi import three_estimates

rng = np.random.default_rng(7)


def population(n_queries: int = 200) -> np.ndarray:
    """Per-query nDCG under human labels for one engine: most queries fine, some poor."""
    return np.clip(rng.beta(5, 2, n_queries), 0, 1)


def test_a_judge_that_raises_labels_misses_the_truth_alone_and_ppi_covers_it():
    """The judge raises one label in 30% of pairs: its per-query metric is higher than the humans' by about 0.08. The
    judge-only interval is narrow around the wrong number; PPI, from 20 human-labelled queries, covers the truth."""
    truth = population()
    raised = np.clip(truth + 0.3 * (1 - truth) + rng.normal(0, 0.03, len(truth)), 0, 1)
    labelled = rng.choice(len(truth), 20, replace=False)
    estimates = three_estimates(raised, truth[labelled], raised[labelled])
    target = truth.mean()
    assert not estimates.llm_only.ci_low <= target <= estimates.llm_only.ci_high
    assert estimates.ppi.ci_low <= target <= estimates.ppi.ci_high
    assert estimates.humans_only.ci_low <= target <= estimates.humans_only.ci_high
    # The judge's metric moves with the humans': PPI is narrower than humans alone, worth more than 20 queries.
    assert estimates.ppi.ci_high - estimates.ppi.ci_low < estimates.humans_only.ci_high - estimates.humans_only.ci_low
    assert estimates.effective_n > 20 and 0 < estimates.lam <= 1


def test_a_judge_that_says_nothing_gets_no_weight_and_ppi_falls_back_to_the_humans():
    truth = population()
    constant = np.full(len(truth), 0.9)
    labelled = rng.choice(len(truth), 20, replace=False)
    estimates = three_estimates(constant, truth[labelled], constant[labelled])
    assert estimates.lam == 0.0
    assert estimates.ppi.value == pytest.approx(estimates.humans_only.value, abs=1e-4)


def test_too_few_human_labelled_queries_say_so():
    estimates = three_estimates(np.ones(10), np.ones(2), np.ones(2))
    assert "too few for an interval" in estimates.ppi.note and estimates.n_human == 2
    assert "too few" in str(estimates.ppi)


def stratified(weighted: bool, repetitions: int = 400) -> float:
    """Mean PPI estimate over repeated stratified draws, minus the truth.

    Two strata of queries: the judge is unsure on the first (where it is also biased, +0.2) and sure on the second
    (unbiased). The draw takes 15 of the 50 unsure queries and 5 of the 150 sure ones, as a team would to spend its
    labels where the judge is weak. Unweighted, the unsure stratum's bias is over-corrected."""
    local = np.random.default_rng(11)
    truth = population(200)
    unsure = np.arange(200) < 50
    judge = np.clip(truth + np.where(unsure, 0.2, 0.0) + local.normal(0, 0.02, 200), 0, 1.2)
    errors = []
    for _ in range(repetitions):
        drawn = np.concatenate([local.choice(np.flatnonzero(unsure), 15, replace=False), local.choice(np.flatnonzero(~unsure), 5, replace=False)])
        inclusion = np.where(unsure[drawn], 15 / 50, 5 / 150)
        weights = 1 / inclusion if weighted else None
        errors.append(three_estimates(judge, truth[drawn], judge[drawn], weights).ppi.value - truth.mean())
    return float(np.mean(errors))


def test_a_stratified_draw_is_biased_without_its_weights_and_not_with_them():
    unweighted, weighted = stratified(weighted=False), stratified(weighted=True)
    assert unweighted < -0.05  # the unsure stratum's bias, over-represented, is over-corrected
    assert abs(weighted) < 0.01


def test_a_difference_is_significant_exactly_when_its_interval_leaves_out_zero():
    """With four human-labelled queries the t interval is far wider than ppi_py's z one; a z p-value beside it called
    differences significant whose interval covered 0 (seen in a real `rae evaluate`)."""
    local = np.random.default_rng(3)
    agreeing = disagreeing = 0
    for _ in range(300):
        n = int(local.integers(4, 12))
        truth = local.normal(0.05, 0.1, 40)
        judge = truth + local.normal(0, 0.05, 40)
        drawn = local.choice(40, n, replace=False)
        estimates = three_estimates(judge, truth[drawn], judge[drawn], difference=True)
        leaves_out_zero = estimates.ppi.ci_low > 0 or estimates.ppi.ci_high < 0
        if abs(estimates.p_value - 0.05) < 0.002:  # at the boundary the interval's rounded ends decide
            continue
        agreeing += leaves_out_zero == (estimates.p_value < 0.05)
        disagreeing += leaves_out_zero != (estimates.p_value < 0.05)
    assert disagreeing == 0 and agreeing > 250

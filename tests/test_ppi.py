"""The corrected estimates: honest where the judge is biased, unbiased under every design only with its probabilities,
no wider than humans alone when the judge says nothing, and covering at ten labelled queries where ppi_py's z
interval does not."""

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest
from ppi_py import ppi_mean_ci, ppi_mean_pointestimate
from scipy import stats as scipy_stats
from sqlalchemy import Column, MetaData, Table, create_engine

from rae.evaluate.corrected import corrected_metrics
from rae.evaluate.designs import (
    KNOWN,
    Draw,
    active_probabilities,
    beliefs_from_labels,
    defensive_share,
    draw,
    inclusion_probabilities,
    judge_spread,
    neyman,
    pools_of,
    strata_of,
)
from rae.evaluate.judge_beliefs import agreement_kappa
from rae.evaluate.metrics import engine_metrics
from rae.evaluate.plan import Pilot, plan_row
from rae.evaluate.ppi import ACTIVE, CERTAIN, STRATIFIED, Sample, fitted_lam, humans_and_ppi, three_estimates
from rae.evaluate.small_sample import Replicates, jackknife_interval, planned_width
from rae.store.samples import record_sample, sample_of
from rae.store.schema import EvaluationSampleRow
from rae.store.store import Store

rng = np.random.default_rng(7)


def population(n_queries: int = 200, seed: int = 7) -> np.ndarray:
    """Per-query nDCG under human labels for one engine: most queries fine, some poor (skewed to the left)."""
    return np.clip(np.random.default_rng(seed).beta(5, 2, n_queries), 0, 1)


def test_a_judge_that_raises_labels_misses_the_truth_alone_and_the_correction_covers_it():
    """The judge raises one label in 30% of pairs: its per-query metric is higher than the humans' by about 0.08. The
    judge-only interval is narrow around the wrong number; corrected by 20 drawn queries, the interval covers the truth."""
    truth = population()
    raised = np.clip(truth + 0.3 * (1 - truth) + rng.normal(0, 0.03, len(truth)), 0, 1)
    sample = Sample.uniform(rng.choice(len(truth), 20, replace=False), len(truth))
    estimates = three_estimates(raised, truth[sample.positions], sample)
    target = truth.mean()
    assert not estimates.llm_only.ci_low <= target <= estimates.llm_only.ci_high
    assert estimates.ppi.ci_low <= target <= estimates.ppi.ci_high
    assert estimates.humans_only.ci_low <= target <= estimates.humans_only.ci_high
    assert estimates.ppi.ci_high - estimates.ppi.ci_low < estimates.humans_only.ci_high - estimates.humans_only.ci_low
    assert estimates.effective_n > 20 and 0 < estimates.lam <= 1


def test_with_lam_fixed_the_point_estimate_is_ppi_pys():
    """The uniform design's estimate is PPI's (``ppi_py``) at the same lam; only the interval differs."""
    truth = population()
    judge = np.clip(truth + rng.normal(0, 0.1, len(truth)), 0, 1)
    sample = Sample.uniform(rng.choice(len(truth), 15, replace=False), len(truth))
    _, ppi, lam = humans_and_ppi(judge, truth[sample.positions], sample, lam=0.7)
    assert lam == 0.7
    expected = float(np.ravel(ppi_mean_pointestimate(truth[sample.positions], judge[sample.positions], judge, lam=0.7))[0])
    assert ppi.value == pytest.approx(expected, abs=1e-4)


def test_a_judge_that_says_nothing_gets_no_weight_and_no_wider_interval():
    """A judge whose metric belongs to other queries: lam shrinks to about 0, and over many draws the corrected
    interval is at most 5% wider than the humans-only one (it falls back to it)."""
    truth = population()
    shuffled = np.random.default_rng(1).permutation(np.clip(truth + rng.normal(0, 0.05, len(truth)), 0, 1))
    local = np.random.default_rng(2)
    ratios, lams = [], []
    for _ in range(300):
        sample = Sample.uniform(local.choice(len(truth), 10, replace=False), len(truth))
        humans_only, ppi, lam = humans_and_ppi(shuffled, truth[sample.positions], sample)
        ratios.append((ppi.ci_high - ppi.ci_low) / (humans_only.ci_high - humans_only.ci_low))
        lams.append(lam)
    assert np.mean(ratios) <= 1.05 and np.median(lams) == 0.0
    constant = np.full(len(truth), 0.9)
    sample = Sample.uniform(rng.choice(len(truth), 20, replace=False), len(truth))
    estimates = three_estimates(constant, truth[sample.positions], sample)
    assert estimates.lam == 0.0 and estimates.ppi.value == pytest.approx(estimates.humans_only.value, abs=1e-4)


def test_too_few_human_labelled_queries_say_so():
    estimates = three_estimates(np.ones(10), np.ones(2), Sample.uniform([0, 1], 10))
    assert "too few for an interval" in estimates.ppi.note and estimates.n_human == 2
    assert "too few" in str(estimates.ppi)


def coverage(interval, truth: np.ndarray, n: int, repetitions: int = 2000, seed: int = 3) -> float:
    local = np.random.default_rng(seed)
    hits = 0
    for _ in range(repetitions):
        drawn = local.choice(len(truth), n, replace=False)
        low, high = interval(drawn)
        hits += low <= truth.mean() <= high
    return hits / repetitions


def test_at_ten_labelled_queries_the_interval_covers_where_ppi_pys_z_interval_does_not():
    """A skewed metric (a long tail of failed queries) and a judge that follows it loosely: at n = 10, ``ppi_py``'s
    interval (z, a ddof=0 spread, lam fitted on the same ten) covers less than 0.94; rae's covers at least 0.945."""
    truth = np.clip(np.random.default_rng(5).beta(4, 1.3, 120), 0, 1)
    judge = np.clip(truth + np.random.default_rng(6).normal(0, 0.15, 120), 0, 1)

    def ppi_pys(drawn: np.ndarray) -> tuple[float, float]:
        low, high = ppi_mean_ci(truth[drawn], judge[drawn], judge, alpha=0.05)
        return float(np.ravel(low)[0]), float(np.ravel(high)[0])

    def raes(drawn: np.ndarray) -> tuple[float, float]:
        _, ppi, _ = humans_and_ppi(judge, truth[drawn], Sample.uniform(drawn, len(truth)))
        return ppi.ci_low, ppi.ci_high

    assert coverage(ppi_pys, truth, 10) < 0.94
    assert coverage(raes, truth, 10) >= 0.945


def test_ten_draws_that_miss_the_tail_take_its_shape_from_the_judge():
    """A tail of failed queries (8 of 120 score 0): ten draws often miss it, show no skewness, and their interval sits
    too high. With a judge whose metric shows the tail on every query (its labels otherwise half wrong), the humans-only
    interval reaches down as far as the tail asks and covers; with a judge whose metric is flat, the shape comes from
    the metric's range (a mean near 1 leaves room for a tail only below) and covers more than the draws' own skewness."""
    local = np.random.default_rng(5)
    truth = np.concatenate([np.clip(local.beta(6, 2, 112), 0, 1), np.zeros(8)])
    judge = np.clip(0.5 * truth + 0.5 * local.permutation(truth) + local.normal(0, 0.1, 120), 0, 1)
    judge[truth == 0] = 0.0

    def humans_only(judge_metric: np.ndarray):
        def interval(drawn: np.ndarray) -> tuple[float, float]:
            estimate, _, _ = humans_and_ppi(judge_metric, truth[drawn], Sample.uniform(drawn, len(truth)))
            return estimate.ci_low, estimate.ci_high

        return interval

    def own_skewness(drawn: np.ndarray) -> tuple[float, float]:
        values = truth[drawn]
        left_out = (values.sum() - values) / (len(values) - 1)
        estimate = jackknife_interval(Replicates(float(values.mean()), [left_out], [np.full(len(values), 1 - len(values) / len(truth))]))
        return estimate.ci_low, estimate.ci_high

    assert coverage(own_skewness, truth, 10) < 0.935
    assert coverage(humans_only(np.full(120, 0.8)), truth, 10) >= 0.94
    assert coverage(humans_only(judge), truth, 10) >= 0.95


def test_the_plan_promises_the_width_the_interval_then_has():
    """``rae plan`` sizes a sample by the width rae's interval will have, skewness correction included: for the same
    draws, the planned width is the printed interval's, and wider than the t interval's alone."""
    local = np.random.default_rng(8)
    values = np.concatenate([np.clip(local.beta(6, 2, 9), 0, 1), [0.0]])
    left_out = (values.sum() - values) / (len(values) - 1)
    se = float(np.std(values, ddof=1) / np.sqrt(len(values)))
    quantile = float(scipy_stats.t.ppf(0.975, len(values) - 1))
    for shape in (-1.0, 0.4):
        interval = jackknife_interval(Replicates(float(values.mean()), [left_out], [np.ones(len(values))], shape))
        planned = planned_width(se, quantile, shape, len(values))
        assert interval.ci_high - interval.ci_low == pytest.approx(planned, abs=2e-4)
        assert planned > 2 * quantile * se * 1.03
    assert planned_width(se, quantile, None, len(values)) == pytest.approx(2 * quantile * se)


def stratified_errors(weighted: bool, repetitions: int = 400) -> float:
    """Two strata: the judge is unsure and biased (+0.2) on the first 50 queries, sure and unbiased on 150. The draw
    takes 15 and 5. Without its strata the unsure stratum's bias is over-corrected."""
    local = np.random.default_rng(11)
    truth = population(200)
    unsure = np.arange(200) < 50
    judge = np.clip(truth + np.where(unsure, 0.2, 0.0) + local.normal(0, 0.02, 200), 0, 1.2)
    errors = []
    for _ in range(repetitions):
        drawn = np.concatenate([local.choice(np.flatnonzero(unsure), 15, replace=False), local.choice(np.flatnonzero(~unsure), 5, replace=False)])
        strata = np.where(unsure[drawn], "unsure", "sure")
        sample = Sample(STRATIFIED, drawn, strata, {"unsure": 50, "sure": 150}) if weighted else Sample.uniform(drawn, 200)
        errors.append(three_estimates(judge, truth[drawn], sample).ppi.value - truth.mean())
    return float(np.mean(errors))


def test_a_stratified_draw_is_biased_without_its_strata_and_not_with_them():
    unweighted, weighted = stratified_errors(weighted=False), stratified_errors(weighted=True)
    assert unweighted < -0.03
    assert abs(weighted) < 0.01


def test_an_active_draw_is_unbiased_with_its_probabilities_covers_and_counts_what_it_left_undrawn():
    """Queries drawn without replacement with chances in proportion to a spread that is larger where the judge is
    worse: each query is drawn with exactly its chance and never twice; weighted by the chances, unbiased (lam fixed)
    and covering (lam fitted); treated as uniform, biased. With the finite-population correction of 1 - each chance
    the interval is narrower than the same draws' without it, and still covers."""
    local = np.random.default_rng(12)
    truth = population(200)
    noisy = np.arange(200) < 60
    judge = np.clip(truth + np.where(noisy, local.normal(0.15, 0.2, 200), local.normal(0, 0.02, 200)), 0, 1.2)
    spread = np.where(noisy, 0.2, 0.02)
    chances = inclusion_probabilities(active_probabilities(spread, defensive_share(0.8)), 40)  # a judge the humans found good
    assert chances.sum() == pytest.approx(40) and chances.max() <= 1
    ids = [str(i) for i in range(200)]
    errors, naive, hits, widths, counts = [], [], {"without": 0, "with": 0}, {"without": [], "with": []}, np.zeros(200)
    for seed in range(1000):
        drawn = draw(ACTIVE, ids, 40, spread, seed=seed, even_share=defensive_share(0.8))
        assert len(drawn.draws) == 40 and set(drawn.draws.values()) == {1}
        sample = drawn.sample(ids)
        counts[sample.positions] += 1
        errors.append(humans_and_ppi(judge, truth[sample.positions], sample, 0.5)[1].value - truth.mean())
        naive.append(humans_and_ppi(judge, truth[sample.positions], Sample.uniform(sample.positions, 200), 0.5)[1].value - truth.mean())
        as_if_replaced = Sample(ACTIVE, sample.positions, sample.strata, sample.stratum_sizes, sample.probabilities, replacement=True)
        for name, which in (("without", sample), ("with", as_if_replaced)):
            _, fitted, _ = humans_and_ppi(judge, truth[sample.positions], which)
            hits[name] += fitted.ci_low <= truth.mean() <= fitted.ci_high
            widths[name].append(fitted.ci_high - fitted.ci_low)
    assert np.allclose(counts / 1000, chances, atol=0.05)  # each query drawn with its chance
    assert abs(np.mean(errors)) < 0.008 and np.mean(naive) < -0.015
    assert hits["without"] / 1000 >= 0.94 and np.mean(widths["without"]) < 0.95 * np.mean(widths["with"])


def test_an_active_draw_takes_the_queries_its_chances_make_certain_whole():
    """Where a query's chance reaches 1 it is drawn for certain: a stratum of its own, weighed by its share of the
    queries and adding no noise; the other draws are weighed against the rest, and the estimate stays unbiased."""
    local = np.random.default_rng(14)
    ids = [f"q{i:02d}" for i in range(60)]
    truth = population(60, seed=14)
    spread = np.r_[np.full(3, 10.0), np.full(57, 0.1)]
    errors = []
    for seed in range(200):
        drawn = draw(ACTIVE, ids, 30, spread, seed=seed, even_share=0.5)
        assert [q for q, s in drawn.strata.items() if s == CERTAIN] == ids[:3] and drawn.stratum_sizes == {"all": 57, CERTAIN: 3}
        sample = drawn.sample(ids)
        certain = sample.strata == CERTAIN
        assert np.all(sample.finite()[certain] == 0) and sample.weights()[0][certain].sum() == pytest.approx(3 / 60)
        judge = np.clip(truth + local.normal(0, 0.2, 60), 0, 1)
        humans, ppi, _ = humans_and_ppi(judge, truth[sample.positions], sample, 0.5)
        assert ppi.has_interval
        errors.append(ppi.value - truth.mean())
    assert abs(np.mean(errors)) < 0.005


def test_an_older_active_draw_made_with_replacement_is_read_as_it_was_made():
    """An older rae's active draw repeated queries and stored a probability per draw: its rows (without_replacement
    false) read back as such a draw, weighted by those probabilities with no finite-population correction."""
    local = np.random.default_rng(13)
    truth = population(200)
    probabilities = active_probabilities(np.where(np.arange(200) < 60, 0.2, 0.02), 0.5)
    drawn = local.choice(200, 15, replace=True, p=probabilities)
    rows = [SimpleNamespace(query_id=str(i), design=ACTIVE, stratum="all", inclusion_probability=float(probabilities[i]),
                            draws=int(np.sum(drawn == i)), stratum_size=200, without_replacement=False, created_at=datetime.now(UTC))
            for i in sorted(set(drawn.tolist()))]
    older = Draw.from_rows(rows)
    assert older is not None and older.replacement and older.size() == 15
    sample = older.sample([str(i) for i in range(200)])
    assert sample.n == 15 and sample.replacement and np.all(sample.finite() == 1.0)
    humans, _, _ = humans_and_ppi(np.zeros(200), truth[sample.positions], sample, 0.0)
    assert humans.value == pytest.approx(np.average(truth[drawn], weights=1 / probabilities[drawn]), abs=1e-4)
    assert not draw(ACTIVE, [str(i) for i in range(200)], 15, seed=1).replacement


def test_the_stratified_draw_gives_more_labels_where_the_judge_is_unsure_and_at_least_ten_everywhere():
    """Two strata by the judge's own spread; half Neyman, half proportional, so a stratum the judge wrongly thinks it
    is sure of is never starved; the draw round-trips through the store's rows."""
    ids = [str(i) for i in range(90)]
    spread = np.r_[np.full(45, 0.01), np.full(45, 0.2)]
    strata = strata_of(ids, spread, 30)
    sizes = neyman(strata, dict(zip(ids, spread, strict=True)), 30)
    assert sum(sizes.values()) == 30 and min(sizes.values()) >= 10 and sizes["unsure"] > sizes["sure"]
    assert strata_of(ids, spread, 19) == dict.fromkeys(ids, "all")  # too few labels for two strata of ten
    bands = {q: ("head", "torso", "tail")[int(q) % 3] for q in ids}
    assert strata_of(ids, spread, 29, bands) == dict.fromkeys(ids, "all") and strata_of(ids, spread, 30, bands) == bands
    assert sum(draw(STRATIFIED, ids, 4, spread, seed=1).draws.values()) == 4  # one stratum: exactly the labels asked
    drawn = draw(STRATIFIED, ids, 30, spread, seed=1)
    assert sum(drawn.draws.values()) == 30 and drawn.stratum_sizes == {"sure": 45, "unsure": 45}
    again = Draw.from_rows([type("Row", (), {**row, "created_at": datetime(2026, 12, 7, tzinfo=UTC)}) for row in drawn.rows()])
    assert again.stratum_sizes == drawn.stratum_sizes and again.probabilities == drawn.probabilities


def test_lam_fitted_outside_the_sample_costs_no_interval_width_for_its_noise():
    """With lam fixed before the draw (fitted on other labelled queries) the jackknife has no lam noise to count."""
    truth = population(200)
    judge = np.clip(truth + rng.normal(0, 0.08, 200), 0, 1)
    local = np.random.default_rng(4)
    inside, outside = [], []
    lam = float(fitted_lam(truth[:40], judge[:40], np.full((1, 40), 1 / 40), float(np.var(judge, ddof=1)))[0])
    for _ in range(200):
        sample = Sample.uniform(local.choice(np.arange(40, 200), 10, replace=False), 200)
        fitted_here, fixed = humans_and_ppi(judge, truth[sample.positions], sample)[1], humans_and_ppi(judge, truth[sample.positions], sample, lam)[1]
        inside.append(fitted_here.ci_high - fitted_here.ci_low)
        outside.append(fixed.ci_high - fixed.ci_low)
    assert np.mean(outside) < np.mean(inside)


def test_a_difference_is_significant_exactly_when_its_interval_leaves_out_zero():
    local = np.random.default_rng(3)
    agreeing = disagreeing = 0
    for _ in range(150):
        n = int(local.integers(5, 12))
        truth = local.normal(0.05, 0.1, 40)
        judge = truth + local.normal(0, 0.05, 40)
        sample = Sample.uniform(local.choice(40, n, replace=False), 40)
        estimates = three_estimates(judge, truth[sample.positions], sample, difference=True)
        leaves_out_zero = estimates.ppi.ci_low > 0 or estimates.ppi.ci_high < 0
        if abs(estimates.p_value - 0.05) < 0.002:  # at the boundary the interval's rounded ends decide
            continue
        agreeing += leaves_out_zero == (estimates.p_value < 0.05)
        disagreeing += leaves_out_zero != (estimates.p_value < 0.05)
    assert disagreeing == 0 and agreeing > 120


def test_one_query_both_score_zero_does_not_give_the_judge_full_weight():
    """Nine queries where the judge says nothing about the humans and one that both score 0 (an engine that returned
    nothing relevant): the regression formula's t is large, the jackknife's sees that the covariance rests on one
    query. A judge that tracks the humans on ten queries without such a one keeps its weight."""
    local = np.random.default_rng(3)
    human = np.r_[0.0, local.uniform(0.5, 1.0, 9)]
    noise = np.r_[0.0, local.uniform(0.85, 1.0, 9)]
    weights = np.full((1, 10), 0.1)
    assert np.corrcoef(human, noise)[0, 1] > 0.6  # the one shared 0 makes the two look related
    assert fitted_lam(human, noise, weights, float(np.var(noise, ddof=1)))[0] < 0.2
    spread_out = local.uniform(0.2, 1.0, 10)
    tracking = np.clip(spread_out + local.normal(0, 0.05, 10), 0, 1)
    assert fitted_lam(spread_out, tracking, weights, float(np.var(tracking, ddof=1)))[0] > 0.7


def test_a_product_the_judge_never_labelled_is_where_it_is_least_sure_not_most():
    """A click log shows few of the products in the lists: the queries it never saw must not look certain to the
    designs (the active draw once piled its labels on the few queries with clicks and covered 0.86 at n = 10)."""
    gains = {"seen": {"a": 0, "b": 2}}
    pools = {"seen": ["a", "b"], "unseen": ["c", "d"]}

    def metric_of(g):
        return np.array([sum(g.get(q, {}).values()) for q in ("seen", "unseen")], dtype=float)

    without = judge_spread(beliefs_from_labels(gains), metric_of)
    assert without[1] == 0.0  # the old belief: nothing labelled, nothing uncertain
    beliefs = beliefs_from_labels(gains, pools=pools)
    assert np.allclose(beliefs["unseen"]["c"], [0.5, 0.0, 0.5])  # the judge's own mix: it knows nothing of c
    spread = judge_spread(beliefs, metric_of)
    assert spread[1] > spread[0] > 0
    assert pools_of({"x": {"q": ["a", "b"]}, "y": {"q": ["b", "c"], "r": ["d"]}}) == {"q": {"a", "b", "c"}, "r": {"d"}}


def test_the_most_a_design_by_the_judges_spread_could_save():
    """A judge unsure of every query alike leaves a design nothing to steer by; one sure of half of them lets a design
    spend every label on the other half: half the variance of a uniform draw's."""
    from rae.studies.planned_labels import spread_ceiling

    assert spread_ceiling(np.full(40, 0.2)) == 0.0
    assert spread_ceiling(np.r_[np.full(20, 0.2), np.zeros(20)]) == 0.5
    assert spread_ceiling(np.zeros(40)) == 0.0


def test_a_panel_that_disagrees_on_a_query_spreads_its_metric_there():
    """Two judges that agree on query a and split on query b: mixed, their beliefs are as sure as each on a and spread
    on b, so the spread of b's metric grows and a's does not."""
    from rae.evaluate.designs import mixed_beliefs

    first = {"a": {"p1": 2, "p2": 0}, "b": {"p1": 2, "p2": 0}}
    second = {"a": {"p1": 2, "p2": 0}, "b": {"p1": 0, "p2": 2}}

    def metric(gains: dict[str, dict[str, int]]) -> np.ndarray:
        return np.array([gains.get(q, {}).get("p1", 0) / 2 for q in ("a", "b")])

    alone = judge_spread(beliefs_from_labels(first, epsilon=0.1), metric, redraws=400)
    mixed = mixed_beliefs([beliefs_from_labels(first, epsilon=0.1), beliefs_from_labels(second, epsilon=0.1)])
    panel = judge_spread(mixed, metric, redraws=400)
    assert np.allclose(mixed["a"]["p1"], beliefs_from_labels(first, epsilon=0.1)["a"]["p1"])
    assert panel[1] > 1.5 * alone[1] and abs(panel[0] - alone[0]) < 0.05


def test_a_judge_that_knows_its_guesses_is_sure_of_its_copies_and_spreads_only_where_it_guessed():
    """The calibrated simulated judge labels exactly as the plain one at its kappa; its beliefs are one label where it
    copied the humans' and the humans' mix where it guessed, so its spread is zero on a query it copied whole. A
    judge's measured probabilities take the place of the 1 - epsilon belief, pair by pair."""
    from rae.datasets.records import Rating
    from rae.labels import LABELS
    from rae.studies.ppi_coverage import StudiedJudge, calibrated_judge, simulated_judge

    humans = [Rating(f"q{i % 6}", f"query {i % 6}", f"p{i}", LABELS[i % 3], "human") for i in range(60)]
    plain, knowing = simulated_judge(humans, 0.6, seed=3), calibrated_judge(humans, 0.6, seed=3)
    assert knowing.gains == plain
    truth = {(r.query_id, r.product_id): r.label.gain for r in humans}
    beliefs = knowing.beliefs({})
    sure = [(q, p) for q, products in beliefs.items() for p, b in products.items() if b.max() == 1.0]
    assert sure and all(plain[q][p] == truth[(q, p)] for q, p in sure)  # sure only of labels it copied
    assert 0.45 < len(sure) / len(humans) < 0.8  # about kappa of them, plus nothing else
    guessed = [b for products in beliefs.values() for b in products.values() if b.max() < 1.0]
    assert all(np.allclose(b, [1 / 3, 1 / 3, 1 / 3]) for b in guessed)  # the humans' mix, here even

    measured = StudiedJudge({"q": {"a": 2, "b": 0}}, {"q": {"a": np.array([0.1, 0.2, 0.7])}})
    overlaid = measured.beliefs({"q": {"a", "b", "c"}})
    assert np.allclose(overlaid["q"]["a"], [0.1, 0.2, 0.7])  # its own probabilities
    assert np.allclose(overlaid["q"]["b"], beliefs_from_labels({"q": {"a": 2, "b": 0}})["q"]["b"])  # 1 - epsilon
    assert "c" in overlaid["q"]  # a product of the pools it never judged: its mix


def test_the_labels_known_before_the_draw_narrow_the_correction_and_only_those_are_held():
    """A judge that calls everything highly relevant, humans who labelled the baseline's lists before the draw, a
    candidate that reorders them and brings one product of its own (irrelevant): the drawn queries correct the
    judge's metric with the earlier labels in place, so only the candidate's own product is left to correct, and the
    interval of the difference narrows."""
    rng = np.random.default_rng(3)
    queries = [f"q{i}" for i in range(40)]
    lists = {"a": {q: [f"{q}-a{j}" for j in range(4)] for q in queries}, "b": {q: [f"{q}-a1", f"{q}-a0", f"{q}-a2", f"{q}-b3"] for q in queries}}
    truth = {q: {p: 0 if "-b" in p else int(rng.integers(0, 3)) for p in sorted({*lists["a"][q], *lists["b"][q]})} for q in queries}
    judge = {q: dict.fromkeys(labels, 2) for q, labels in truth.items()}
    known = {q: {p: truth[q][p] for p in lists["a"][q]} for q in queries}
    widths: dict[str, list[float]] = {"plain": [], "holding": []}
    for seed in range(4):
        drawn = draw("uniform", queries, 12, seed=seed)
        drawn.made_at = datetime(2026, 12, 7, tzinfo=UTC)
        humans = {q: dict(truth[q]) if q in drawn.draws else dict(known[q]) for q in queries}
        judged = {engine: engine_metrics(ranking, judge, 4) for engine, ranking in lists.items()}
        plain = corrected_metrics(lists, judged, humans, ["ndcg@4"], "ndcg@4", 4, drawn)
        holding = corrected_metrics(lists, judged, humans, ["ndcg@4"], "ndcg@4", 4, drawn, known, judge)
        assert plain.known_pairs == 0 and holding.known_pairs == 160 and holding.labelled_queries == plain.labelled_queries
        assert holding.comparisons[("a", "b")].llm_only == plain.comparisons[("a", "b")].llm_only  # the judge alone is the judge's
        for name, corrected in (("plain", plain), ("holding", holding)):
            widths[name].append(corrected.comparisons[("a", "b")].ppi.ci_high - corrected.comparisons[("a", "b")].ppi.ci_low)
    assert np.mean(widths["holding"]) < 0.8 * np.mean(widths["plain"])


def test_a_drawn_query_no_engine_returned_anything_for_is_labelled_whole_not_waiting_forever():
    """Its pool is empty, so there is nothing to label: it counts as labelled whole, or the correction would stay
    provisional for good and the gate could never pass."""
    queries = [f"q{i}" for i in range(6)]
    lists = {e: {q: ([] if q == "q0" else [f"{q}-p{j}" for j in range(3)]) for q in queries} for e in ("a", "b")}
    gains = {q: {p: 1 for p in lists["a"][q]} for q in queries}
    drawn = draw("uniform", queries, 6)
    judged = {engine: engine_metrics(ranking, gains, 3) for engine, ranking in lists.items()}
    corrected = corrected_metrics(lists, judged, gains, ["ndcg@3"], "ndcg@3", 3, drawn)
    assert "q0" in corrected.labelled_queries and not corrected.provisional and "q0" not in corrected.outside


@pytest.mark.parametrize("design", [STRATIFIED, ACTIVE])
def test_the_queries_labelled_whole_before_the_draw_are_taken_whole_and_every_label_goes_elsewhere(design: str):
    """The prediction holds the earlier labels, so on the 40 queries they cover whole it is the truth. The stratified
    and active designs take those 40 whole (probability 1, no label asked) and draw their 15 among the other 80: each
    is unbiased (lam fixed), covers, and its interval is narrower than a uniform draw's of 15 that spends a third of its
    labels where nothing is left to correct. A stratum nobody drew in leaves the estimate without an interval, not
    with a biased one."""
    local = np.random.default_rng(21)
    queries = [f"q{i:03d}" for i in range(120)]
    truth = population(120, seed=21)
    known = np.arange(120) < 40
    prediction = np.where(known, truth, np.clip(truth + local.normal(0.05, 0.2, 120), 0, 1))
    spread = np.where(known, 0.0, np.where(np.arange(120) < 80, 0.1, 0.3))
    hits, errors, widths = 0, [], {"uniform": [], design: []}
    for seed in range(300):
        drawn = draw(design, queries, 15, spread, seed=seed, known=queries[:40], even_share=0.5)
        assert sum(s == KNOWN for s in drawn.strata.values()) == 40 and sum(n for q, n in drawn.draws.items() if q not in queries[:40]) == 15
        assert all(drawn.probabilities[q] == 1.0 and drawn.draws[q] == 1 for q in queries[:40]) and drawn.stratum_sizes == {KNOWN: 40, "all": 80}
        assert set(drawn.draws.values()) == {1}  # no query drawn twice, whatever the design
        sample = drawn.sample(queries)
        ppi = three_estimates(prediction, truth[sample.positions], sample).ppi
        hits += ppi.ci_low <= truth.mean() <= ppi.ci_high
        errors.append(humans_and_ppi(prediction, truth[sample.positions], sample, 0.5)[1].value - truth.mean())
        widths[design].append(ppi.ci_high - ppi.ci_low)
        plain = draw("uniform", queries, 15, seed=seed, known=queries[:40]).sample(queries)
        assert plain.n == 15  # a uniform draw stays a simple random sample
        uniform = three_estimates(prediction, truth[plain.positions], plain).ppi
        widths["uniform"].append(uniform.ci_high - uniform.ci_low)
    assert hits / 300 >= 0.93 and abs(np.mean(errors)) < 0.006
    assert np.mean(widths[design]) < 0.85 * np.mean(widths["uniform"])
    census_only = draw(design, queries, 15, spread, seed=0, known=queries[:40]).sample(queries, complete=set(queries[:40]))
    assert not three_estimates(prediction, truth[census_only.positions], census_only).ppi.has_interval


def test_the_plan_labels_no_query_the_earlier_labels_cover_whole():
    """The stratified and active plans draw among the queries left to correct, so they need fewer than a uniform draw
    over all."""
    local = np.random.default_rng(5)
    truth = population(120, seed=5)
    known = np.arange(40)
    prediction = truth.copy()
    prediction[40:] = np.clip(truth[40:] + local.normal(0, 0.2, 80), 0, 1)
    pilot = np.arange(40, 70)
    row = plan_row("a", Pilot(prediction, np.where(np.arange(120) < 40, 0.0, 0.2), pilot, truth[pilot], known=known), 0.1, 10, 0.1)
    without = plan_row("a", Pilot(prediction, np.where(np.arange(120) < 40, 0.0, 0.2), pilot, truth[pilot]), 0.1, 10, 0.1)
    assert row.queries["stratified"] < 0.8 * row.queries["uniform"] and row.queries["active"] < 0.8 * row.queries["uniform"]
    assert row.queries["stratified"] < without.queries["stratified"] and row.queries["active"] < without.queries["active"]


def test_the_active_plan_counts_the_finite_population_and_asks_for_no_more_than_the_queries_left():
    """The active design draws without replacement: its plan counts the finite-population correction (the queries it
    is sure to draw add no noise), so its queries are never more than the queries left, and where no draw of them
    reaches the width it says none in reach will do; it costs what the queries it labels cost."""
    local = np.random.default_rng(7)
    truth = population(120, seed=7)
    noisy = np.clip(truth + local.normal(0, 0.3, 120), 0, 1)
    spread = np.where(np.arange(120) < 20, 1.0, 0.01)
    pilot = np.arange(30)
    loose = plan_row("a", Pilot(noisy, spread, pilot, truth[pilot], even_share=0.5), 0.12, 10, 0.1)
    labelled = loose.queries["active"]
    assert labelled is not None and labelled <= 120 and loose.labelled("active") == labelled
    assert loose.cost["active"] == pytest.approx(labelled * 10 * 0.1) and loose.cell("active") == str(labelled)
    everything = plan_row("a", Pilot(noisy, spread, pilot, truth[pilot], even_share=0.5), 1e-6, 10, 0.1)
    assert everything.queries["active"] == everything.queries["uniform"] == 120  # every query: the metric known exactly


def test_the_active_draw_follows_the_judge_spread_only_as_far_as_the_humans_found_the_judge_agreeing():
    """A judge sure of exactly the queries where it errs (the embedded model calls nearly everything relevant): its
    spread sends the active draw away from its errors and weighs them most. Checked against human labels, a judge at
    chance gets a uniform draw, which keeps the interval to the uniform design's width; a good judge follows its spread;
    an unchecked one is hedged halfway."""
    assert defensive_share(None) == 0.75 and defensive_share(0.05) == 0.95 and defensive_share(-0.1) == 1.0
    assert defensive_share(0.9) == 0.5 and defensive_share(0.6) == 0.5  # never less: no chance below half the uniform draw's
    all_relevant = {"q": {f"p{i}": 2 for i in range(40)}}
    assert agreement_kappa(all_relevant, all_relevant) is None  # kappa is undefined: unmeasured, not perfect
    assert agreement_kappa({"q": dict(list(all_relevant["q"].items())[:29])}, all_relevant) is None  # too few pairs
    mixed = {"q": {f"p{i}": i % 3 for i in range(40)}}
    assert agreement_kappa(mixed, mixed) == pytest.approx(1.0)
    local = np.random.default_rng(5)
    truth = population(200)
    wrong = np.arange(200) < 80  # the judge is wrong here, and surest here
    judge = np.clip(truth + np.where(wrong, local.normal(0.3, 0.15, 200), local.normal(0, 0.03, 200)), 0, 1.2)
    spread = np.where(wrong, 0.005, 0.1)

    def width(design: str, share: float) -> float:
        widths = []
        for seed in range(300):
            sample = draw(design, [str(i) for i in range(200)], 15, spread, seed=seed, even_share=share).sample([str(i) for i in range(200)])
            corrected = humans_and_ppi(judge, truth[sample.positions], sample)[1]
            widths.append(corrected.ci_high - corrected.ci_low)
        return float(np.mean(widths))

    uniform, unchecked, trusted = width("uniform", 0.5), width(ACTIVE, defensive_share(None)), width(ACTIVE, defensive_share(0.9))
    assert width(ACTIVE, defensive_share(0.0)) <= 1.05 * uniform
    assert uniform < unchecked <= 1.05 * uniform  # unchecked, the bet costs a little, and never more than 5%
    assert trusted > unchecked  # trusting a judge sure of its errors costs more


def test_a_store_of_an_older_rae_reads_its_active_draw_as_made_with_replacement(store_url):
    """The store an older rae wrote has no ``without_replacement`` column: opening it adds the column, false for the
    rows already there, so their active draw reads as made with replacement; a new draw reads as made without."""
    older = MetaData()
    table = EvaluationSampleRow.__table__
    Table(table.name, older, *[Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns if c.name != "without_replacement"])
    engine = create_engine(store_url)
    older.create_all(engine)
    with engine.begin() as connection:
        connection.execute(older.tables[table.name].insert(), [
            {"population": "p", "query_id": q, "run_id": "r", "design": ACTIVE, "stratum": "all", "inclusion_probability": 0.01,
             "draws": n, "stratum_size": 120, "created_at": datetime.now(UTC)} for q, n in (("q1", 2), ("q2", 1))])
    engine.dispose()
    store = Store(store_url)
    made = Draw.from_rows(sample_of(store, "p"))
    assert made is not None and made.replacement and made.size() == 3
    ids = [f"q{i}" for i in range(120)]
    record_sample(store, "p", "r2", draw(ACTIVE, ids, 12, np.linspace(0, 1, 120), seed=2).rows())
    again = Draw.from_rows(sample_of(store, "p"))
    assert again is not None and not again.replacement and again.size() == 12

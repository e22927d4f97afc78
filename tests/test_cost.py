import json

import pytest
from typer.testing import CliRunner

from rae.annotate.call_gate import most_cost
from rae.annotate.cost_estimate import estimate_cost
from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.annotate.spending import budget_state, open_budget
from rae.cli import app
from rae.config import ConfigError, ModelPrice, ModelSpec
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator

PRICE = ModelPrice(input_per_million=1000.0, output_per_million=0.0)  # the scripted model: 100 input tokens a call = $0.10


def priced(store, scripted) -> Judging:
    handle = ModelHandle(ModelSpec(name="openai/scripted-test"), PRICE)
    return Judging(Annotator(), CacheThrough(store), handle, scripted)


def test_the_dry_run_counts_exactly_the_calls_the_run_then_makes(scripted, store, tiny):
    judging = priced(store, scripted)
    pairs = tiny.pairs()
    AnnotationRun(judging, tiny.catalog, progress=False).run(pairs[:5])
    plan = estimate_cost(judging, pairs, tiny.catalog)
    assert (plan.pairs, plan.judgments_stored, plan.queries, plan.guidelines_stored) == (12, 5, 3, 2)
    assert {name: s.calls for name, s in plan.stages.items()} == {"requirements": 1, "guidelines": 1, "judgment": 7}
    assert plan.cost_usd is not None and plan.cost_usd > 0 and "would make 9 LM calls" in plan.line()
    before = sum(scripted.calls.values())
    summary = AnnotationRun(judging, tiny.catalog, progress=False).run(pairs)
    assert sum(scripted.calls.values()) - before == plan.calls == summary.total_calls
    assert estimate_cost(judging, pairs, tiny.catalog).calls == 0


def test_the_dry_run_learns_token_counts_from_the_stores_history(scripted, store, tiny, monkeypatch):
    import rae.annotate.cost_estimate as dry_run

    monkeypatch.setattr(dry_run, "MIN_HISTORY", 5)
    judging = priced(store, scripted)
    AnnotationRun(judging, tiny.catalog, progress=False).run(tiny.pairs()[:6])
    plan = estimate_cost(judging, tiny.pairs(), tiny.catalog)
    judgment = plan.stages["judgment"]
    assert judgment.from_history and judgment.input_tokens == 100 * judgment.calls  # the scripted model's 100 a call


def test_a_budget_is_never_passed_by_the_ledger_and_the_run_resumes_with_more(scripted, store, tiny, tmp_path):
    """Every call reserves the most it can cost (its request's bytes as tokens at $1,000 a million) before it is sent;
    the scripted model bills 100 tokens ($0.10). A budget with room for the largest reservation and about five calls
    stops the run after a few calls; the ledger never passes it; a rerun with more judges the rest, paying nothing
    twice."""
    from rae.store.store import Store

    probe = priced(Store(f"sqlite:///{tmp_path / 'probe.db'}"), scripted)
    AnnotationRun(probe, tiny.catalog, progress=False).run(tiny.pairs())
    largest = max(most_cost(request, PRICE, 256) for request in scripted.requests)
    before = sum(scripted.calls.values())
    judging = priced(store, scripted)
    budget = open_budget(store, [judging.model], largest + 0.5)
    first = AnnotationRun(judging, tiny.catalog, workers=4, progress=False, budget=budget).run(tiny.pairs())
    first.budget = ledger = budget_state(store, budget)
    assert ledger.stopped and ledger.spent_usd <= budget.limit_usd and first.over_budget
    assert first.total_calls >= 1 and first.total.cost_usd == pytest.approx(ledger.spent_usd)
    assert ledger.spent_usd > budget.limit_usd - largest  # a call that did not fit waited for the others; less than one was left
    assert first.judged < 12 and "the budget stopped the run" in first.line() and "spent of the budget" in first.line()
    rest = AnnotationRun(judging, tiny.catalog, workers=4, progress=False, budget=open_budget(store, [judging.model], 1000.0)).run(tiny.pairs())
    assert not rest.over_budget and rest.judged == 12
    assert first.total_calls + rest.total_calls == 18 == sum(scripted.calls.values()) - before  # none paid twice


def test_a_run_the_budget_stopped_before_any_call_does_not_say_everything_was_in_the_store(scripted, store, tiny):
    judging = priced(store, scripted)
    summary = AnnotationRun(judging, tiny.catalog, progress=False, budget=open_budget(store, [judging.model], 0.01)).run(tiny.pairs())
    assert summary.total_calls == 0 and summary.over_budget
    assert "0 LM calls made; " in summary.line() and "everything was in the store" not in summary.line()


def test_a_budget_needs_a_known_price(store):
    unpriced = ModelHandle(ModelSpec(name="openai/nobody-prices-this"))
    with pytest.raises(ConfigError, match="needs a price"):
        open_budget(store, [unpriced], 1.0)


def test_the_evaluate_dry_run_prints_json_and_calls_nothing(tmp_path, scripted_workspace):
    url = f"sqlite:///{tmp_path / 'rae.db'}"
    result = CliRunner().invoke(app, ["evaluate", "--split", "dev", "--queries", "2", "--k", "3", "--engines", "bm25-title,bm25-full",
                                      "--store", url, "--dry-run", "--json", "--program", "uncompiled"])
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.stdout)["dry_run"]
    assert estimate["queries"] == 2 and 6 <= estimate["pairs"] <= 12  # the union of two engines' top 3 for 2 queries
    assert estimate["calls"] == estimate["pairs"] + 2 * 2  # a judgment per pair; requirements and guidelines per query
    assert estimate["stages"]["judgment"]["calls"] == estimate["pairs"]
    assert sum(scripted_workspace.calls.values()) == 0


def test_a_sum_of_costs_is_rounded_as_one_call_is_and_unknown_if_any_part_is():
    from rae.lm.pricing import call_cost, total_cost

    price = ModelPrice(input_per_million=0.15, output_per_million=0.6)
    parts = [call_cost(price, 1234, 56), call_cost(price, 7, 1)]
    assert total_cost(parts) == round(sum(parts), 8)
    assert total_cost([*parts, None]) is None
    assert total_cost([]) == 0.0


def test_an_evaluation_the_budget_stopped_says_so_above_its_tables_and_a_complete_one_does_not(scripted, store, tiny, tmp_path):
    """The metrics count a product the judge never labelled as not relevant; only judged@k showed it, so an evaluation
    the budget stopped read like a finished one (rae evaluate --budget 0.5: 37 of 398 pairs judged, exit 0, no word)."""
    from rae.evaluate.evaluation import evaluate_engines
    from rae.evaluate.report import evaluation_json, markdown, write_report
    from rae.retrieve.rankings import retrieve_all
    from tests.test_evaluate import tiny_engines

    judging, queries = priced(store, scripted), tiny.queries()
    retrievals = retrieve_all(tiny_engines(tiny), queries, 3, tiny.catalog)
    stopped = evaluate_engines(retrievals, queries, judging, tiny.catalog, k=3, progress=False, budget=open_budget(store, [judging.model], 0.5))
    missing = stopped.unjudged()
    assert all(n > 0 for n, _ in missing.values())
    for page in ("report.md", "report.html"):
        text = (write_report(stopped, {"run_id": "r1"}, tmp_path / "stopped") / page).read_text()
        assert "Incomplete: the judge has not labelled every product of the top 3 (the budget stopped the judging)" in text
        assert f"title lacks {missing['title'][0]} of its {missing['title'][1]}" in text and "(with more --budget)" in text
    engine = evaluation_json(stopped, {})["engines"]["title"]
    assert engine["unjudged_in_top_k"] == missing["title"][0] and engine["not_judged"] > 0
    complete = evaluate_engines(retrievals, queries, judging, tiny.catalog, k=3, progress=False, budget=open_budget(store, [judging.model], 1000.0))
    assert all(n == 0 for n, _ in complete.unjudged().values()) and "Incomplete" not in markdown(complete, {"run_id": "r2"})

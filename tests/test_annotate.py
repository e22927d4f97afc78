import pytest
from dspy import lm15
from sqlalchemy import select

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationAborted, AnnotationRun
from rae.programs.annotator import Annotator
from rae.store.schema import JudgmentRow
from tests.scripted import default_answer, field_text


def run(judging, tiny, pairs=None, workers=2, retry_failed=False):
    return AnnotationRun(judging, tiny.catalog, workers=workers, progress=False, retry_failed=retry_failed).run(pairs or tiny.pairs())


def judged(store):
    with store.session() as session:
        return list(session.scalars(select(JudgmentRow)))


def test_guidelines_are_written_once_per_query_and_a_rerun_makes_no_calls(scripted, judging, tiny):
    first = run(judging, tiny)
    assert (first.pairs, first.judged, first.failed, first.from_store) == (12, 12, 0, 0)
    assert scripted.calls == {"requirements": 3, "guidelines": 3, "judgment": 12}
    assert first.lm_calls == {"requirements_guidelines": 6, "judgment": 12}

    second = run(judging, tiny)
    assert second.total_calls == 0 and second.from_store == 12 and second.judged == 12
    assert "0 LM calls made" in second.line()
    assert sum(scripted.calls.values()) == 18


def test_a_run_resumes_where_an_earlier_one_stopped(scripted, judging, tiny):
    pairs = tiny.pairs()
    run(judging, tiny, pairs[:5])
    assert scripted.calls["judgment"] == 5
    rest = run(judging, tiny, pairs)
    assert rest.lm_calls["judgment"] == 7 and rest.from_store == 5
    assert len(judged(judging.store)) == 12


def test_judgments_run_grouped_by_query_so_prompts_share_a_prefix(scripted, judging, tiny):
    run(judging, tiny, workers=1)
    queries = [field_text(r, "query") for r in scripted.requests if "label" in r.config.response_format["schema"]["properties"]]
    assert queries == sorted(queries) and len(queries) == 12


def test_garbage_from_the_model_is_stored_as_a_failure_with_its_text_and_the_run_goes_on(store, model, tiny, scripted):
    def script(stage, request):
        if stage == "judgment" and "toaster" in field_text(request, "product").lower():
            return "I think it is fine!!"
        return default_answer(stage, request)

    scripted.script = script
    judging = Judging(Annotator(), CacheThrough(store), model, scripted)
    summary = run(judging, tiny)
    assert (summary.judged, summary.failed) == (11, 1)
    [failed] = [row for row in judged(store) if row.status == "failed"]
    assert failed.product_id == "p3" and failed.label is None
    assert failed.raw_output == "I think it is fine!!" and failed.attempts == 2 and failed.error
    calls_before = scripted.calls["judgment"]

    again = run(judging, tiny)
    assert again.total_calls == 0 and again.failed == 1  # a stored failure was paid for: not paid again

    scripted.script = default_answer
    retried = run(judging, tiny, retry_failed=True)
    assert retried.lm_calls["judgment"] == 1 and retried.failed == 0 and scripted.calls["judgment"] == calls_before + 1


def test_a_transient_lm_error_is_not_stored_and_the_pair_is_judged_on_the_next_run(store, model, tiny, scripted):
    def script(stage, request):
        if stage == "judgment" and "desk lamp" in field_text(request, "product").lower():
            return lm15.RateLimitError("slow down", status=429)
        return default_answer(stage, request)

    scripted.script = script
    judging = Judging(Annotator(), CacheThrough(store), model, scripted)
    summary = run(judging, tiny)
    assert (summary.judged, summary.not_judged, summary.errors) == (11, 1, 1)
    assert "LMRateLimitError" in summary.first_error and "rerun to resume" in summary.line()
    assert len(model.waits) == 6  # the policy's six retries, each waited for, before the pair was given up
    scripted.script = default_answer
    assert run(judging, tiny).lm_calls["judgment"] == 1


def test_a_rate_limited_call_is_retried_after_the_servers_retry_after(store, model, tiny, scripted):
    refused = set()

    def script(stage, request):
        product = field_text(request, "product")
        if stage == "judgment" and product not in refused:
            refused.add(product)
            return lm15.RateLimitError("slow down", status=429, retry_after=3.0)
        return default_answer(stage, request)

    scripted.script = script
    summary = run(Judging(Annotator(), CacheThrough(store), model, scripted), tiny)
    assert summary.judged == 12 and summary.errors == 0
    assert summary.spend["judgment"].retries == 12 and "12 retries of transient errors" in summary.line()
    assert len(model.waits) == 12 and all(3.0 <= w <= 3.5 for w in model.waits)


def test_an_error_no_retry_can_mend_stops_the_run_and_keeps_what_was_done(store, model, tiny, scripted):
    def script(stage, request):
        if stage == "judgment" and field_text(request, "query") == "running shoes":
            return lm15.AuthError("invalid api key", status=401)
        return default_answer(stage, request)

    scripted.script = script
    judging = Judging(Annotator(), CacheThrough(store), model, scripted)
    with pytest.raises(AnnotationAborted, match=r"stopped: LMAuthError: .*invalid api key \(8 pairs stored\)"):
        run(judging, tiny, workers=1)
    assert len(judged(store)) == 8  # pairs run in query order: "desk lamp" and "red kettle" were judged before "running shoes"


def test_many_workers_give_the_same_judgments_as_one(store, model, tiny, scripted, tmp_path):
    from rae.store.store import Store

    run(Judging(Annotator(), CacheThrough(store), model, scripted), tiny, workers=1)
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    run(Judging(Annotator(), CacheThrough(other), model, scripted), tiny, workers=8)

    def labels(s):
        return {(r.query_id, r.product_id): r.label for r in judged(s)}

    assert labels(store) == labels(other)


def test_a_product_missing_from_the_catalog_is_named_before_any_call(judging, tiny, scripted):
    from rae.datasets.records import Pair

    with pytest.raises(AnnotationAborted, match="not in the catalog, e.g. nope"):
        run(judging, tiny, [Pair("q1", "red kettle", "nope")])
    assert sum(scripted.calls.values()) == 0

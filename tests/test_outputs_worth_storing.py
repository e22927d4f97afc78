"""Placeholder outputs are tried again with a hint, then given up honestly: never stored or shown as content."""

from sqlalchemy import select

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES
from rae.store.schema import GuidelinesRow, JudgmentRow
from tests.scripted import default_answer, field_text

PLACEHOLDERS = {"highly_relevant": "{highly_relevant}", "acceptable_substitute": "{acceptable_substitute}", "irrelevant": "{irrelevant}"}


def run(store, model, scripted, tiny, pairs=None, retry_failed=False):
    judging = Judging(Annotator(), CacheThrough(store), model, scripted)
    return AnnotationRun(judging, tiny.catalog, workers=2, progress=False, retry_failed=retry_failed).run(pairs or tiny.pairs())


def rows(store, table):
    with store.session() as session:
        return list(session.scalars(select(table)))


def test_placeholder_guidelines_are_refined_then_the_generic_rubric_is_read_and_recorded(store, model, tiny, scripted):
    scripted.script = lambda stage, request: PLACEHOLDERS if stage == "guidelines" else default_answer(stage, request)
    first = run(store, model, scripted, tiny)
    assert scripted.calls["guidelines"] == 3 * 3  # each of 3 queries: the first try and two refining attempts
    refining = [r for r in scripted.requests if "highly_relevant" in r.config.response_format["schema"]["properties"]]
    hinted = [r for r in refining if field_text(r, "hint_")]
    assert len(hinted) == 6 and all(r.config.temperature == 0.3 for r in hinted)
    assert all("placeholder" in field_text(r, "hint_") for r in hinted)  # told why the earlier answer was rejected

    stored = rows(store, GuidelinesRow)
    assert {r.status for r in stored} == {"degenerate"} and {r.error for r in stored} == {"highly_relevant: a {field} placeholder"}
    assert all(r.validation == {"first_try": "highly_relevant: a {field} placeholder", "attempts": 3, "final": r.error} for r in stored)

    judgments = rows(store, JudgmentRow)
    assert len(judgments) == 12 and {j.guidelines_source for j in judgments} == {"generic"}
    judged = [r for r in scripted.requests if "label" in r.config.response_format["schema"]["properties"]]
    assert all(field_text(r, "guidelines") == GENERIC_GUIDELINES.render() for r in judged)
    assert first.judged == 12 and first.lm_calls["requirements_guidelines"] == 3 + 9
    assert "degenerate outputs: guidelines 3 of 3 queries (generic rubric used)" in first.line()

    calls = sum(scripted.calls.values())
    second = run(store, model, scripted, tiny)
    assert sum(scripted.calls.values()) == calls and second.total_calls == 0  # neither is paid for again
    assert "guidelines 3 of 3 queries (generic rubric used)" in second.line()


def test_guidelines_that_become_content_on_a_second_attempt_are_kept(store, model, tiny, scripted):
    def script(stage, request):
        if stage == "guidelines" and not field_text(request, "hint_"):
            return PLACEHOLDERS
        return default_answer(stage, request)

    scripted.script = script
    summary = run(store, model, scripted, tiny)
    stored = rows(store, GuidelinesRow)
    assert {r.status for r in stored} == {"ok"} and all(r.validation["attempts"] == 2 and r.validation["final"] is None for r in stored)
    assert {j.guidelines_source for j in rows(store, JudgmentRow)} == {"query"}
    assert "degenerate" not in summary.line()


def test_a_reasoning_that_stays_filler_is_stored_as_none_and_flagged(store, model, tiny, scripted):
    def script(stage, request):
        answer = default_answer(stage, request)
        if stage == "judgment" and "kettle" in field_text(request, "query"):
            return {**answer, "reasoning": "Not supplied for this particular example."}
        return answer

    scripted.script = script
    summary = run(store, model, scripted, tiny)
    kettle = [j for j in rows(store, JudgmentRow) if j.query == "red kettle"]
    others = [j for j in rows(store, JudgmentRow) if j.query != "red kettle"]
    assert len(kettle) == 4 and all(j.reasoning is None and "no_reasoning" in j.flags.split(",") and j.label for j in kettle)
    assert all(j.validation["first_try"] == "DSPy's filler for a missing field" and j.validation["attempts"] == 3 for j in kettle)
    assert all(j.reasoning and "no_reasoning" not in j.flags for j in others)
    assert summary.judged == 12 and summary.lm_calls["judgment"] == 4 * 3 + 8
    assert "reasoning 4 of 12 judgments (stored as none)" in summary.line()


def test_retry_failed_also_pays_again_for_degenerate_outputs(store, model, tiny, scripted):
    scripted.script = lambda stage, request: PLACEHOLDERS if stage == "guidelines" else default_answer(stage, request)
    run(store, model, scripted, tiny, tiny.pairs()[:4])
    scripted.script = default_answer
    run(store, model, scripted, tiny, tiny.pairs()[:4], retry_failed=True)
    assert {r.status for r in rows(store, GuidelinesRow)} == {"ok"}

"""The store's promise: an answer is keyed on exactly what the model was sent. Any change to a prompt, from any source
(instructions, field descriptions, demos, the adapter, the product text), misses; the same request hits, whichever ids,
engine or command asked for it."""

import dataclasses

import dspy
import pytest

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.config import ModelSpec, ProductTextSpec
from rae.datasets.records import Pair
from rae.lm.adapter import GrammarJSONAdapter
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.store.keys import request_key
from rae.store.schema import JudgmentRow, LMCallRow

PAIR = Pair("q1", "red kettle", "p1")


def judge_once(judging: Judging, tiny, pair: Pair = PAIR, product=None):
    catalog = {**tiny.catalog, pair.product_id: product} if product is not None else tiny.catalog
    run = AnnotationRun(judging, catalog, progress=False)
    run.run([pair])
    return run.outcomes[pair]


def test_same_text_hits_and_changed_product_text_misses(scripted, judging, tiny):
    first = judge_once(judging, tiny)
    assert not first.cached and first.spend.calls == 1
    again = judge_once(judging, tiny)
    assert again.cached and again.spend.calls == 0 and again.value.fingerprint == first.value.fingerprint
    retitled = dataclasses.replace(tiny.catalog["p1"], title="Red kettle 1.7l, now with a longer title")
    changed = judge_once(judging, tiny, product=retitled)
    assert not changed.cached and changed.value.fingerprint != first.value.fingerprint
    assert scripted.calls["judgment"] == 2


def test_the_same_text_under_other_ids_is_not_paid_twice(scripted, judging, tiny):
    judge_once(judging, tiny)
    other_ids = judge_once(judging, tiny, Pair("log-7", "red kettle", "p1"))
    assert other_ids.cached and scripted.calls["judgment"] == 1


def with_instructions(program: Annotator) -> Annotator:
    program.judge.predictor.signature = program.judge.predictor.signature.with_instructions("Judge like a strict buyer.")
    return program


def with_demo(program: Annotator) -> Annotator:
    program.judge.predictor.demos = [dspy.Example(query="q", guidelines="g", product="p", reasoning="r", label="irrelevant")]
    return program


def with_field_description(program: Annotator) -> Annotator:
    signature = program.judge.predictor.signature
    program.judge.predictor.signature = signature.with_updated_fields("product", desc="the listing, as the shop shows it")
    return program


def with_other_requirements_prompt(program: Annotator) -> Annotator:
    program.requirements.extract.signature = program.requirements.extract.signature.with_instructions("List what the shopper wants.")
    return program


@pytest.mark.parametrize("change", [with_instructions, with_demo, with_field_description, with_other_requirements_prompt])
def test_a_compiled_programs_change_of_any_prompt_text_misses_the_cache(scripted, store, model, tiny, change):
    """No fingerprint of the program is kept by hand: whatever a compilation changes in a prompt changes the request,
    and only the calls whose prompt changed are paid again."""
    judge_once(Judging(Annotator(), CacheThrough(store), model, scripted), tiny)
    calls = dict(scripted.calls)
    outcome = judge_once(Judging(change(Annotator()), CacheThrough(store), model, scripted), tiny)
    paid = {stage: scripted.calls[stage] - calls.get(stage, 0) for stage in scripted.calls}
    if change is with_other_requirements_prompt:
        # The requirements' prompt changed: that call is paid again. This model wrote the same requirements, so the
        # guidelines' and the judge's prompts are unchanged, and their answers are reused.
        assert paid == {"requirements": 1, "guidelines": 0, "judgment": 0} and outcome.cached
    else:  # only the judge's prompt changed: the query's requirements and guidelines are reused
        assert paid == {"requirements": 0, "guidelines": 0, "judgment": 1} and not outcome.cached


class TerseAdapter(GrammarJSONAdapter):
    """An adapter whose prompt says one thing differently (as an edit to rae's adapter would)."""

    def format_task_description(self, signature):
        return "In short: " + super().format_task_description(signature)


def test_an_edit_to_the_adapters_prompt_misses_the_cache(scripted, store, tiny, monkeypatch):
    """The old keys named the adapter by a constant, so an edit to the grammar adapter's prompt was served the old
    answers; the request itself is the key now."""
    embedded = ModelHandle(ModelSpec())  # the grammar adapter's model
    judge_once(Judging(Annotator(), CacheThrough(store), embedded, scripted), tiny)
    monkeypatch.setattr(ModelHandle, "adapter", lambda self: TerseAdapter())
    before = sum(scripted.calls.values())
    assert not judge_once(Judging(Annotator(), CacheThrough(store), embedded, scripted), tiny).cached
    assert sum(scripted.calls.values()) - before == 3  # requirements, guidelines and the judgment: every prompt changed


def test_a_changed_model_or_decoding_never_reuses_an_answer(scripted, store, model, tiny):
    judge_once(Judging(Annotator(), CacheThrough(store), model, scripted), tiny)
    other_model = ModelHandle(ModelSpec(name="openai/another-model"))
    assert not judge_once(Judging(Annotator(), CacheThrough(store), other_model, scripted), tiny).cached
    warmer = ModelHandle(ModelSpec(name="openai/scripted-test", temperature=0.5))
    assert not judge_once(Judging(Annotator(), CacheThrough(store), warmer, scripted), tiny).cached
    no_cot = Annotator(chain_of_thought=False)
    assert not judge_once(Judging(no_cot, CacheThrough(store), model, scripted), tiny).cached
    assert scripted.calls["judgment"] == 4


def test_other_product_fields_or_budget_are_other_text(scripted, store, model, tiny):
    judge_once(Judging(Annotator(), CacheThrough(store), model, scripted, ProductTextSpec()), tiny)
    short = Judging(Annotator(), CacheThrough(store), model, scripted, ProductTextSpec(fields=("title",), budget=100))
    assert not judge_once(short, tiny).cached


def test_generic_guidelines_are_other_text_and_need_no_guideline_calls(scripted, store, model, tiny):
    judge_once(Judging(Annotator(), CacheThrough(store), model, scripted), tiny)
    outcome = judge_once(Judging(Annotator(guidelines="generic"), CacheThrough(store), model, scripted), tiny)
    assert not outcome.cached
    assert scripted.calls == {"requirements": 1, "guidelines": 1, "judgment": 2}


def test_the_model_identity_keeps_the_server_but_never_its_credentials():
    spec = ModelSpec(name="openai/llama", api_base="http://us3r:s3cr3t@127.0.0.1:8000/v1/?key=k3y")
    identity = ModelHandle(spec).identity
    assert "127.0.0.1:8000/v1" in identity
    assert "s3cr3t" not in identity and "us3r" not in identity and "k3y" not in identity


def test_a_stored_answer_keeps_what_was_sent_and_a_record_what_it_came_to(scripted, judging, store, tiny):
    outcome = judge_once(judging, tiny)
    row = store.get(JudgmentRow, outcome.value.fingerprint)
    assert row.status == "ok" and row.label == "highly_relevant"
    assert row.raw_output and '"label"' in row.raw_output
    assert row.input_tokens == 100 and row.output_tokens == 10 and row.latency_s >= 0 and "scripted-test" in row.model_id
    judged = scripted.requests[-1]
    key, sent = request_key(judging.model.sent(judged))
    answer = store.get(LMCallRow, key)
    assert answer.stage == "judgment" and answer.text == row.raw_output and answer.request == sent
    assert "red kettle" in str(answer.request["request"]["messages"]) and answer.model_id == judging.model.identity


def test_an_image_is_keyed_by_its_hash_not_its_bytes():
    import base64

    from dspy.lm15 import ImagePart, Message, Request

    data = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 12).decode()
    request = Request(model="m", messages=(Message.user([ImagePart(data=data, media_type="image/png")]),))
    for model in (ModelHandle(ModelSpec(name="openai/m")), ModelHandle(ModelSpec(name="openai/m", api_base="http://127.0.0.1:9/v1"))):
        key, sent = request_key(model.sent(request))  # DSPy's request, and a server's body with the image as a data URL
        assert data not in str(sent) and "sha256:" in str(sent)
        other_data = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 11).decode()
        other = Request(model="m", messages=(Message.user([ImagePart(data=other_data, media_type="image/png")]),))
        assert request_key(model.sent(other))[0] != key


def test_a_store_made_by_an_older_rae_gains_the_new_columns(tmp_path):
    import sqlite3

    from rae.store.store import Store

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE judgments (fingerprint VARCHAR(64) PRIMARY KEY, program_hash VARCHAR(64), model_id TEXT, input_hash VARCHAR(64), "
        "status VARCHAR(16), error TEXT, raw_output TEXT, attempts INTEGER, input_tokens INTEGER, output_tokens INTEGER, cost_usd FLOAT, "
        "latency_s FLOAT, run_id VARCHAR(64), created_at DATETIME, query_id VARCHAR(128), query TEXT, product_id VARCHAR(128), "
        "label VARCHAR(32), reasoning TEXT)"
    )
    old.execute("INSERT INTO judgments (fingerprint, status, label) VALUES ('f1', 'ok', 'irrelevant')")
    old.commit()
    old.close()
    store = Store(f"sqlite:///{path}")
    row = store.get(JudgmentRow, "f1")
    assert row.label == "irrelevant" and row.visual == "none"


def a_request(text: str = "judge this pair") -> "dspy.lm15.Request":
    from dspy.lm15 import Config, Message, Request, TextPart

    return Request(model="openai/llama", system="You judge relevance.", messages=(Message.user([TextPart(text)]),),
                   config=Config(max_tokens=256, temperature=0.0, response_format={"type": "json_schema", "name": "out", "schema": {"type": "object"}}))


def test_switching_the_engine_for_one_api_base_misses_the_store():
    """The measured hole: one store, one api_base, engine "server" and then "litellm": the second run was served
    every answer of the first though the two engines send different bodies. The sender is part of the key now."""
    request = a_request()
    keys = {engine: request_key(ModelHandle(ModelSpec(name="openai/llama", api_base="http://127.0.0.1:8000/v1", engine=engine)).sent(request))[0]
            for engine in ("server", "litellm", "lm15", "auto")}
    assert len(set(keys.values())) == 4


def test_a_batch_and_an_online_call_share_a_key_exactly_when_their_bodies_are_equal():
    """The batch line's body is the one its key is computed from (``BatchCapture``); the online server engine sends
    ``ServerEngine.body``. Over specs whose bodies agree or not, the keys agree exactly when the bodies do."""
    from rae.lm.batched import CURRENT_KEY, BatchCapture, Deferred
    from rae.lm.server import ServerEngine

    request = a_request()
    specs = [
        ModelSpec(name="openai/llama", api_base="http://127.0.0.1:8000/v1"),  # json_object both ways: equal bodies
        ModelSpec(name="openai/llama", api_base="http://127.0.0.1:8000/v1", structured_output="json_schema"),
        ModelSpec(name="openai/llama", api_base="http://127.0.0.1:8001/v1"),  # another server: another address
    ]
    seen = 0
    for online_spec in specs:
        for batch_spec in specs:
            online = ModelHandle(online_spec)
            server = ServerEngine(online_spec.api_base, online.served_name, None, 5.0, online_spec.structured_output)
            capture = BatchCapture(ModelHandle(batch_spec, batch=True), True, frozenset())
            batch_key, _ = request_key(capture.model.sent(request))
            token = CURRENT_KEY.set(batch_key)
            with pytest.raises(Deferred):
                capture.complete(request)
            CURRENT_KEY.reset(token)
            same_body = capture.bodies[batch_key] == server.body(request) and ModelHandle(batch_spec, batch=True).chat_url == online.chat_url
            assert (request_key(online.sent(request))[0] == batch_key) == same_body
            seen += same_body
    assert seen == 3  # each spec with itself
    openai_batch = request_key(ModelHandle(ModelSpec(name="openai/gpt-4o-mini"), batch=True).sent(request))[0]
    assert openai_batch != request_key(ModelHandle(ModelSpec(name="openai/gpt-4o-mini")).sent(request))[0]  # DSPy's engine: not our body

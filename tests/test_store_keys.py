"""The store's promise: changed product text, program or model never hits a stale row; identical work always hits."""

import dataclasses

import dspy

from rae.annotate.executor import CacheThrough
from rae.annotate.steps import StoredSteps
from rae.config import ModelSpec, ProductTextSpec
from rae.datasets.records import Pair
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.store.schema import JudgmentRow


def judge_once(steps: StoredSteps, tiny, pair: Pair, product=None):
    guidelines = steps.guidelines(pair.query).value
    return steps.judgment(pair, guidelines, product or tiny.catalog[pair.product_id])


def test_same_text_hits_and_changed_product_text_misses(engine, steps, tiny):
    pair = Pair("q1", "red kettle", "p1")
    first = judge_once(steps, tiny, pair)
    assert not first.cached and first.spend.calls == 1
    again = judge_once(steps, tiny, pair)
    assert again.cached and again.spend.calls == 0 and again.value.fingerprint == first.value.fingerprint
    retitled = dataclasses.replace(tiny.catalog["p1"], title="Red kettle 1.7l, now with a longer title")
    changed = judge_once(steps, tiny, pair, retitled)
    assert not changed.cached and changed.value.fingerprint != first.value.fingerprint
    assert engine.calls["judgment"] == 2


def test_the_same_text_under_other_ids_is_not_paid_twice(engine, steps, tiny):
    judge_once(steps, tiny, Pair("q1", "red kettle", "p1"))
    other_ids = judge_once(steps, tiny, Pair("log-7", "red kettle", "p1"))
    assert other_ids.cached and engine.calls["judgment"] == 1


def test_a_changed_program_or_model_never_reuses_a_row(engine, store, model, tiny):
    pair = Pair("q1", "red kettle", "p1")
    base = StoredSteps(Annotator(), CacheThrough(store), model)
    judge_once(base, tiny, pair)

    with_demo = Annotator()
    with_demo.judge.judge.predict.demos = [dspy.Example(query="q", guidelines="g", product="p", reasoning="r", label="irrelevant")]
    compiled = StoredSteps(with_demo, CacheThrough(store), model)
    assert compiled.hashes["judgment"] != base.hashes["judgment"]
    assert compiled.hashes["guidelines"] == base.hashes["guidelines"]  # the guidelines are still reused
    assert not judge_once(compiled, tiny, pair).cached

    other_model = StoredSteps(Annotator(), CacheThrough(store), ModelHandle(ModelSpec(name="openai/another-model")))
    assert not judge_once(other_model, tiny, pair).cached

    warmer = StoredSteps(Annotator(), CacheThrough(store), ModelHandle(ModelSpec(name="openai/scripted-test", temperature=0.5)))
    assert not judge_once(warmer, tiny, pair).cached

    no_cot = StoredSteps(Annotator(chain_of_thought=False), CacheThrough(store), model)
    assert not judge_once(no_cot, tiny, pair).cached
    assert engine.calls["judgment"] == 5


def test_other_product_fields_or_budget_are_other_text(engine, store, model, tiny):
    pair = Pair("q1", "red kettle", "p1")
    judge_once(StoredSteps(Annotator(), CacheThrough(store), model, ProductTextSpec()), tiny, pair)
    short = StoredSteps(Annotator(), CacheThrough(store), model, ProductTextSpec(fields=("title",), budget=100))
    assert not judge_once(short, tiny, pair).cached


def test_generic_guidelines_are_keyed_apart_and_need_no_guideline_calls(engine, store, model, tiny):
    pair = Pair("q1", "red kettle", "p1")
    judge_once(StoredSteps(Annotator(), CacheThrough(store), model), tiny, pair)
    generic = StoredSteps(Annotator(guidelines="generic"), CacheThrough(store), model)
    outcome = judge_once(generic, tiny, pair)
    assert not outcome.cached
    assert engine.calls == {"requirements": 1, "guidelines": 1, "judgment": 2}


def test_the_model_identity_keeps_the_server_but_never_its_credentials():
    spec = ModelSpec(name="openai/llama", api_base="http://us3r:s3cr3t@127.0.0.1:8000/v1/?key=k3y")
    identity = ModelHandle(spec).identity
    assert "127.0.0.1:8000/v1" in identity
    assert "s3cr3t" not in identity and "us3r" not in identity and "k3y" not in identity


def test_a_stored_row_keeps_provenance_cost_and_raw_output(engine, steps, store, tiny):
    outcome = judge_once(steps, tiny, Pair("q1", "red kettle", "p1"))
    row = store.get(JudgmentRow, outcome.value.fingerprint)
    assert row.status == "ok" and row.label == "highly_relevant"
    assert row.raw_output and '"label"' in row.raw_output
    assert row.input_tokens == 100 and row.output_tokens == 10 and row.latency_s >= 0
    assert row.program_hash == steps.hashes["judgment"] and "scripted-test" in row.model_id


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

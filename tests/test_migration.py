"""A team's paid answers survive the upgrade: rows an older rae stored under its old keys are keyed again on the
requests that made them (``rae store migrate``), and served without a new call; the rest are counted with why."""

import json
from datetime import UTC, datetime, timedelta

from dspy.lm15 import Config, Message, Request, TextPart
from typer.testing import CliRunner

from bench.fake_server import FakeServer
from rae.cli import app
from rae.config import ModelSpec
from rae.datasets.bundled import esci_us
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.programs.guidelines import Guidelines
from rae.programs.legacy_keys import legacy_program_hash
from rae.programs.product_text import product_text
from rae.store.keys import canonical_request, key_for
from rae.store.schema import GuidelinesRow, JudgmentRow, MetaRow, RequirementsRow
from rae.store.store import Store

PAST = datetime.now(UTC) - timedelta(days=30)


def project(tmp_path, url: str):
    path = tmp_path / "rae.toml"
    path.write_text(f'store = "sqlite:///{tmp_path / "rae.db"}"\ntracking_uri = "none"\nworkers = 2\n'
                    f'[model]\nname = "openai/judge"\napi_base = "{url}"\n')
    return path


def old_store(tmp_path, url: str, attempts_of_the_last: int = 1) -> tuple[Store, list]:
    """A store as rae wrote it before schema 2: one query's requirements and guidelines and three judgments, under the
    old keys, their answers the model's own (as the fake server answers them)."""
    data = esci_us()
    pairs = data.pairs("dev", queries=1, per_query=3)
    query = pairs[0].query
    model = ModelHandle(ModelSpec(name="openai/judge", api_base=url))
    program = Annotator()
    store = Store(f"sqlite:///{tmp_path / 'rae.db'}")
    requirements = [{"name": "product type", "value": query, "importance": "must"}]
    guidelines = {"highly_relevant": f"a {query}", "acceptable_substitute": f"close to a {query}", "irrelevant": f"not a {query}"}

    def keyed(row, stage: str, module, content: dict, answer: dict, attempts: int = 1):
        key = key_for(stage, legacy_program_hash(module), model.identity_before_senders, content)  # as an older rae named the model
        row.fingerprint, row.program_hash, row.model_id, row.input_hash = key.fingerprint, key.program_hash, key.model_id, key.input_hash
        row.status, row.raw_output, row.attempts, row.input_tokens, row.output_tokens = "ok", json.dumps(answer), attempts, 100, 10
        row.cost_usd, row.created_at = 0.002, PAST
        store.put(row)

    keyed(RequirementsRow(query=query, requirements=requirements), "requirements", program.requirements, {"query": query}, {"requirements": requirements})
    keyed(GuidelinesRow(query=query, guidelines=guidelines), "guidelines", program.guidelines, {"query": query, "requirements": requirements},
          guidelines)
    rendered = Guidelines(**guidelines).render()
    for i, pair in enumerate(pairs):
        content = {"query": query, "guidelines": rendered, "product": product_text(data.catalog[pair.product_id])}
        row = JudgmentRow(query_id=pair.query_id, query=query, product_id=pair.product_id, label="irrelevant", reasoning="r")
        attempts = attempts_of_the_last if i == len(pairs) - 1 else 1
        keyed(row, "judgment", program.judge, content, {"reasoning": "It is another product.", "label": "irrelevant"}, attempts)
    with store.session() as session, session.begin():  # as an older rae left it: no schema version
        session.query(MetaRow).delete()
    return Store(store.url), pairs


def test_old_answers_are_keyed_again_and_served_without_a_call(tmp_path):
    with FakeServer() as server:
        store, pairs = old_store(tmp_path, server.url, attempts_of_the_last=2)
        assert not store.migrated
        config = project(tmp_path, server.url)
        noted = CliRunner().invoke(app, ["agreement", "--split", "dev", "--queries", "1", "--config", str(config), "--program", "uncompiled"])
        assert "rae store migrate" in noted.stderr
        migrated = CliRunner().invoke(app, ["store", "migrate", "--config", str(config)])
        assert migrated.exit_code == 0, migrated.output
        assert "carried over 4 stored answers (1 guidelines, 2 judgment, 1 requirements)" in migrated.stdout
        assert "not carried over: 1 (1 judgment: answered after several attempts" in migrated.stdout
        assert Store(store.url).migrated
        listed = tmp_path / "pairs.csv"
        listed.write_text("query_id,query,product_id\n" + "".join(f'{p.query_id},"{p.query}",{p.product_id}\n' for p in pairs))
        run = CliRunner().invoke(app, ["annotate", "--pairs", str(listed), "--config", str(config), "--program", "uncompiled"])
        assert run.exit_code == 0, run.output
        # The carried answers are served; only the pair answered in two attempts is asked again.
        assert "3 pairs: 3 judged" in run.stdout and "1 LM calls made (1 for judgments, 0 for requirements and guidelines)" in run.stdout
        again = CliRunner().invoke(app, ["store", "migrate", "--config", str(config)])
        assert again.exit_code == 0  # safe to rerun: nothing is stored twice


def test_a_new_store_needs_no_migration(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    assert store.migrated


def test_answers_of_schema_2_are_keyed_again_on_what_their_sender_sends_and_served_without_a_call(tmp_path):
    """Schema 2 keyed an answer on the model's identity and DSPy's request; schema 3 on the body a server is sent.
    A run judges three pairs; its answers are then rewritten as schema 2 left them (old identity, canonical request,
    old key, the store marked schema 2); after ``rae store migrate`` the same run makes no call."""
    with FakeServer() as server:
        config = project(tmp_path, server.url)
        listed = tmp_path / "pairs.csv"
        pairs = esci_us().pairs("dev", queries=1, per_query=3)
        listed.write_text("query_id,query,product_id\n" + "".join(f'{p.query_id},"{p.query}",{p.product_id}\n' for p in pairs))
        first = CliRunner().invoke(app, ["annotate", "--pairs", str(listed), "--config", str(config), "--program", "uncompiled"])
        assert first.exit_code == 0, first.output
        store = Store(f"sqlite:///{tmp_path / 'rae.db'}")
        old = _as_schema_2(store, ModelHandle(ModelSpec(name="openai/judge", api_base=server.url)))
        assert old > 0 and not Store(store.url).migrated
        migrated = CliRunner().invoke(app, ["store", "migrate", "--config", str(config)])
        assert migrated.exit_code == 0 and f"carried over {old} stored answers" in migrated.stdout, migrated.output
        again = CliRunner().invoke(app, ["annotate", "--pairs", str(listed), "--config", str(config), "--program", "uncompiled"])
        assert again.exit_code == 0 and "0 LM calls made" in again.stdout, again.output


def _as_schema_2(store: Store, model: ModelHandle) -> int:
    """Rewrite a schema-3 store as schema 2 left it: each answer under the key of the old identity and DSPy's
    canonical request, that request stored, and the store marked schema 2. How many answers."""
    from rae.store.keys import identity_request_key
    from rae.store.schema import LMCallRow

    table = LMCallRow.__table__
    with store.engine.begin() as connection:
        rows = [row._asdict() for row in connection.execute(table.select())]
        connection.execute(table.delete())
        for row in rows:
            assert row["request"]["url"].endswith("/chat/completions")  # schema 3 keeps the body a server was sent
            request = _request_of_body(row["request"]["body"])
            key = identity_request_key(model.identity_before_senders, request)
            connection.execute(table.insert(), {**row, "fingerprint": key, "model_id": model.identity_before_senders,
                                                "request": canonical_request(request)})
    store.set_meta("schema_version", "2")
    return len(rows)


def _request_of_body(body: dict) -> Request:
    """The DSPy request a chat body was made from (what the server engine sends: a system and a user message)."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), None)
    messages = tuple(Message(role=m["role"], parts=(TextPart(m["content"]),)) for m in body["messages"] if m["role"] != "system")
    settings = {k: body[k] for k in ("max_tokens", "temperature", "seed") if k in body}
    return Request(model="openai/judge", messages=messages, system=system, config=Config(**settings, response_format=body.get("response_format")))

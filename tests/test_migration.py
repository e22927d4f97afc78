"""A team's paid answers survive the upgrade: rows an older rae stored under its old keys are keyed again on the
requests that made them (``rae store migrate``), and served without a new call; the rest are counted with why."""

import json
from datetime import UTC, datetime, timedelta

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
from rae.store.keys import key_for
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
        key = key_for(stage, legacy_program_hash(module), model.identity, content)
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

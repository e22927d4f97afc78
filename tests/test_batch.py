"""Batch mode against a local fake of the Files and Batches endpoints: the same requests as online, stored under the
same keys, resumed after a kill without submitting twice, failures and expiry asked again, files for a team's GPUs."""

import json
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from bench.fake_server import FakeServer, completion_for
from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.store.schema import BatchRow, GuidelinesRow, JudgmentRow, LMCallRow, RequirementsRow
from rae.store.store import Store
from tests.fake_batches import FakeBatches

SLICE = ["--split", "dev", "--queries", "3", "--per-query", "4", "--program", "uncompiled"]


def project(tmp_path: Path, url: str, name: str = "rae") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'store = "sqlite:///{tmp_path / (name + ".db")}"\ntracking_uri = "none"\nbatch_poll_s = 0.01\nworkers = 2\n'
        f'[model]\nname = "openai/judge"\napi_base = "{url}"\n[prices."openai/judge"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n'
    )
    return path


def rows(tmp_path: Path, table, name: str = "rae") -> list:
    with Store(f"sqlite:///{tmp_path / (name + '.db')}").session() as session:
        return list(session.scalars(select(table)))


def test_three_rounds_store_every_pair_under_the_online_keys_at_the_batch_price(tmp_path):
    with FakeBatches() as batches:
        config = project(tmp_path, batches.url)
        result = CliRunner().invoke(app, ["annotate", *SLICE, "--batch", "--config", str(config)])
        assert result.exit_code == 0, result.output
        assert "12 pairs: 12 judged" in result.stdout
        recorded = rows(tmp_path, BatchRow)
        assert [r.requests for r in recorded] == [3, 3, 12] and {r.status for r in recorded} == {"completed"} and all(r.stored for r in recorded)
        judged = rows(tmp_path, JudgmentRow)
        assert len(judged) == 12 and len(rows(tmp_path, GuidelinesRow)) == 3 and len(rows(tmp_path, RequirementsRow)) == 3
        # At the batch price: half of $1 / $2 per million, on 100 input and 10 output tokens a request.
        assert {j.cost_usd for j in judged} == {round((100 * 1.0 + 10 * 2.0) / 1e6 * 0.5, 8)}
        judgment_keys = {a.fingerprint for a in rows(tmp_path, LMCallRow) if a.stage == "judgment"}  # each answer under its request's key
        judgment_batch = next(r for r in recorded if r.requests == 12)
        sent = batches.requests_of(judgment_batch.batch_id)
        assert {line["url"] for line in sent} == {"/v1/chat/completions"} and {line["custom_id"] for line in sent} == judgment_keys

        # The same pairs online, at the same base URL: nothing is paid again, and a new pair's request is the one the
        # batch would have held.
        again = CliRunner().invoke(app, ["annotate", *SLICE, "--config", str(config)])
        assert "0 LM calls made" in again.stdout and batches.online == []
        other = CliRunner().invoke(app, ["annotate", "--split", "dev", "--queries", "4", "--per-query", "4", "--program", "uncompiled", "--config", str(config)])
        assert other.exit_code == 0 and batches.online  # the fourth query's work, online
    with FakeServer() as server:  # an online run elsewhere, for the bodies: the batch's are exactly these
        assert CliRunner().invoke(app, ["annotate", *SLICE, "--config", str(project(tmp_path, server.url, "online"))]).exit_code == 0
        online_bodies = {json.dumps(b["messages"], sort_keys=True) for b in server.recorded.bodies if "[[ ## product ## ]]" in b["messages"][-1]["content"]}
    assert {json.dumps(line["body"]["messages"], sort_keys=True) for line in sent} == online_bodies


def test_failed_and_expired_requests_are_asked_again_by_the_next_run(tmp_path):
    with FakeBatches(fail=lambda request: "lacoste" in json.dumps(request["body"]["messages"]).lower()) as batches:
        config = project(tmp_path, batches.url)
        CliRunner().invoke(app, ["annotate", *SLICE, "--batch", "--config", str(config)])
        stored = len(rows(tmp_path, JudgmentRow))
        batches.fail = lambda request: False
        CliRunner().invoke(app, ["annotate", *SLICE, "--batch", "--config", str(config)])
        assert len(rows(tmp_path, JudgmentRow)) == 12 and stored < 12
    with FakeBatches(expire_after=2) as batches:
        config = project(tmp_path, batches.url, "expiring")
        CliRunner().invoke(app, ["annotate", *SLICE, "--batch", "--config", str(config)])
        assert {r.status for r in rows(tmp_path, BatchRow, "expiring")} == {"expired"}
        first = rows(tmp_path, BatchRow, "expiring")[0]
        assert first.requests == 3 and first.completed == 2  # what the expired batch answered is kept...
        assert len(rows(tmp_path, JudgmentRow, "expiring")) < 12
        batches.expire_after = None
        CliRunner().invoke(app, ["annotate", *SLICE, "--batch", "--config", str(config)])
        assert len(rows(tmp_path, JudgmentRow, "expiring")) == 12  # ...and the rest is asked by the next run


def test_a_killed_batch_run_resumes_polling_and_never_submits_twice(tmp_path):
    with FakeBatches() as batches:
        config = project(tmp_path, batches.url)
        slow = config.read_text().replace("batch_poll_s = 0.01", "batch_poll_s = 1.0")
        config.write_text(slow)
        args = [sys.executable, "-m", "rae", "annotate", *SLICE, "--batch", "--config", str(config)]
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        store = Store(f"sqlite:///{tmp_path / 'rae.db'}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.engine.connect() as connection:
                if connection.execute(select(func.count()).select_from(BatchRow)).scalar():
                    break
            time.sleep(0.05)
        first.kill()  # polling its first batch
        first.wait()
        assert len(batches.batches) == 1
        config.write_text(slow.replace("batch_poll_s = 1.0", "batch_poll_s = 0.01"))
        second = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert second.returncode == 0, second.stderr
        assert [len(batches.requests_of(b)) for b in batches.batches] == [3, 3, 12]  # the first batch was followed, not sent again
        assert len(rows(tmp_path, JudgmentRow)) == 12


def test_a_batch_file_for_a_teams_gpus_and_its_results_imported(tmp_path):
    config = project(tmp_path, "http://127.0.0.1:9/v1")  # nothing listens: a file run never calls the model
    for expected in (3, 3, 12):
        requests = tmp_path / "requests.jsonl"
        assert CliRunner().invoke(app, ["annotate", *SLICE, "--batch-file", str(requests), "--config", str(config)]).exit_code == 0
        lines = [json.loads(line) for line in requests.read_text().splitlines()]
        assert len(lines) == expected and all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in lines)
        results = tmp_path / "results.jsonl"  # what vLLM's run_batch writes for them
        results.write_text("".join(json.dumps({"id": f"vllm-{i}", "custom_id": line["custom_id"], "response": {"status_code": 200, "request_id": f"r{i}", "body": {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion_for(line["body"])}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 5}}}, "error": None}) + "\n" for i, line in enumerate(lines)))
        imported = CliRunner().invoke(app, ["batches", "import", str(results), "--config", str(config)])
        assert imported.exit_code == 0, imported.output
    assert len(rows(tmp_path, JudgmentRow)) == 12
    listed = CliRunner().invoke(app, ["batches", "--config", str(config)])
    assert listed.stdout.count("completed") == 3 and "stored" in listed.stdout


def test_the_embedded_model_has_no_batch_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["annotate", *SLICE, "--batch"])
    assert result.exit_code == 1 and "the embedded model has none" in str(result.exception)


def test_the_pairs_are_real(tmp_path):
    assert len(esci_us().pairs("dev", 3, 4)) == 12

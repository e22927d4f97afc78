"""A budget is never passed, by the store's own ledger, whatever a step does and wherever it runs; a run the budget
stopped, rerun with more, continues without paying for anything twice.

The model server answers a step's first call with text that does not parse and every later call with a placeholder
reasoning, so every step makes four calls (the parse retry, then two refinements): the case where the old per-step
reservation let a run spend twice its budget. 64 calls are in flight, at $10 and $20 a million tokens. The Ray
placement is in ``tests/ray_scenario.py`` (a two-node cluster that loses a node mid-run).
"""

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bench.fake_server import FakeServer, Fault
from rae.cli import app
from rae.store.schema import BudgetRow
from rae.store.store import Store
from tests.fake_batches import FakeBatches

PRICE = '[prices."openai/judge"]\ninput_per_million = 10.0\noutput_per_million = 20.0\n'
SLICE = ["--split", "dev", "--queries", "4", "--per-query", "5", "--program", "uncompiled"]


def four_calls_a_step(number: int, body: dict) -> Fault | None:
    """Garbage for a step's first call (greedy), a placeholder reasoning for the others: nothing it writes is kept."""
    if body.get("temperature", 0.0) == 0.0:
        return Fault(garbage="this is not JSON")
    text = json.dumps({"reasoning": "{reasoning}", "label": "irrelevant", "requirements": [], "highly_relevant": "{highly_relevant}",
                       "acceptable_substitute": "{acceptable_substitute}", "irrelevant": "{irrelevant}"})
    return Fault(garbage=text)


def project(tmp_path: Path, url: str, name: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'store = "sqlite:///{tmp_path / (name + ".db")}"\ntracking_uri = "none"\nworkers = 64\nbatch_poll_s = 0.01\n'
                    f'[model]\nname = "openai/judge"\napi_base = "{url}"\nmax_tokens = 256\n{PRICE}{extra}')
    return path


def ledgers(tmp_path: Path, name: str) -> list:
    with Store(f"sqlite:///{tmp_path / (name + '.db')}").engine.connect() as connection:
        return list(connection.execute(select(BudgetRow.__table__).order_by(BudgetRow.__table__.c.created_at)))


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    return result.exit_code, result.stdout + (str(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else "")


def stopped_then_finished(tmp_path: Path, server: FakeServer, name: str, command: list[str], budget: str, extra: str = "") -> dict:
    """The command under a budget that stops it, then with more: what each ledger says and what the server was paid."""
    config = project(tmp_path, server.url, name, extra)
    code, first = run(config, *command, "--budget", budget)
    paid_first = len(server.recorded.bodies)
    code_again, again = run(config, *command, "--budget", "100")
    return {"code": code, "first": first, "again": again, "code_again": code_again, "ledgers": ledgers(tmp_path, name), "paid_first": paid_first,
            "paid": len(server.recorded.bodies)}


def most_reserved(bodies: list[dict]) -> float:
    """The largest reservation among these requests, counted as ``rae.annotate.call_gate`` counts (a byte a token, 16
    a message and 16 for the template) at this project's prices: what a run the budget stopped may leave unspent."""
    def most(body: dict) -> float:
        tokens = 16 + sum(16 + len(str(message["content"]).encode()) for message in body["messages"])
        return (tokens * 10.0 + body.get("max_tokens", 256) * 20.0) / 1e6

    return max(map(most, bodies))


def unbounded_calls(tmp_path: Path, command: list[str], extra: str = "") -> int:
    """How many calls the same command makes on a store of its own with no budget: what a run may pay in all."""
    with FakeServer(faults=four_calls_a_step) as server:
        code, out = run(project(tmp_path, server.url, "unbounded", extra), *command)
        assert code == 0, out
        return len(server.recorded.bodies)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every command runs in the test's directory (its cache, reports and studies there)."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("placement", [[], ["--processes", "2"]], ids=["one process", "two processes"])
def test_annotate_never_passes_its_budget_and_continues_with_more(tmp_path, placement):
    command = ["annotate", *SLICE, *placement]
    with FakeServer(faults=four_calls_a_step) as server:
        done = stopped_then_finished(tmp_path, server, "annotate", command, "0.08")
    first, finished = done["ledgers"]
    assert first.spent_usd <= first.limit_usd == 0.08 and first.refused > 0 and first.calls > 0
    if not placement:  # a call refused while the run had calls in flight waited for them: it stopped only with less left than a call
        assert first.spent_usd > first.limit_usd - most_reserved(server.recorded.bodies[: done["paid_first"]])
    assert "spent of the budget of $0.0800; the budget stopped the run" in done["first"] and done["code"] == 0
    assert finished.refused == 0 and "20 pairs: 20 judged" in done["again"].replace("failed to parse", "")  # the rest, judged
    assert "stopped the run" not in done["again"]
    assert done["paid"] == unbounded_calls(tmp_path, command)  # nothing paid twice across the two runs


def test_a_batch_reserves_at_submission_and_never_passes_its_budget(tmp_path):
    with FakeBatches() as batches:
        config = project(tmp_path, batches.url, "batch")
        code, first = run(config, "annotate", *SLICE, "--batch", "--budget", "0.002")
        ledger = ledgers(tmp_path, "batch")[0]
        assert code == 0 and ledger.spent_usd <= 0.002 and ledger.refused > 0 and ledger.reserved_usd == pytest.approx(0.0)
        assert "the budget stopped the run" in first
        code, again = run(config, "annotate", *SLICE, "--batch", "--budget", "100")
        assert code == 0 and "20 pairs: 20 judged" in again


def test_a_panel_of_judges_shares_one_budget(tmp_path):
    judges = '[judges.a]\nname = "openai/judge"\napi_base = "URL"\nmax_tokens = 256\n[judges.b]\nname = "openai/judge"\napi_base = "URL"\ntemperature = 0.1\nmax_tokens = 256\n'
    with FakeServer(faults=four_calls_a_step) as server:
        extra = judges.replace("URL", server.url)
        done = stopped_then_finished(tmp_path, server, "panel", ["annotate", *SLICE, "--judges", "a,b"], "0.1", extra)
    first = done["ledgers"][0]
    assert first.spent_usd <= 0.1 and first.refused > 0 and "the budget stopped the run" in done["first"]


def test_the_gate_and_the_tuner_never_pass_their_budgets(tmp_path):
    tune = '[engines.weak-title]\nkind = "bm25"\nfields = { title = 0.05, description = 1.0 }\ntune = { "fields.title" = [0.0, 5.0] }\n'
    with FakeServer(faults=four_calls_a_step) as server:
        config = project(tmp_path, server.url, "improve", tune)
        code, gate = run(config, "gate", "--baseline", "bm25-full", "--candidate", "bm25-title", "--split", "dev", "--queries", "6", "--k", "5",
                         "--budget", "0.05", "--program", "uncompiled")
        assert code == 3 and "budget stopped the judging" in gate, gate
        tuned_code, tuned = run(config, "tune-engine", "weak-title", "--trials", "3", "--split", "dev", "--queries", "10", "--k", "5",
                                "--budget", "0.05", "--no-write-config", "--program", "uncompiled")
    for ledger in ledgers(tmp_path, "improve"):
        assert ledger.spent_usd <= ledger.limit_usd == 0.05 and ledger.refused > 0
    assert "the budget ran out" in tuned


def test_a_budget_without_a_known_price_is_refused_at_the_start_and_a_run_that_judged_nothing_fails(tmp_path):
    with FakeServer() as server:
        config = tmp_path / "free.toml"
        config.write_text(f'store = "sqlite:///{tmp_path / "free.db"}"\ntracking_uri = "none"\n[model]\nname = "openai/unpriced-judge"\n'
                          f'api_base = "{server.url}"\n')
        code, out = run(config, "annotate", *SLICE, "--budget", "1")
        assert code != 0 and "needs a price for openai/unpriced-judge" in out and server.recorded.bodies == []
    with FakeServer(faults=lambda number, body: Fault(status=401)) as server:
        config = project(tmp_path, server.url, "refused")
        code, out = run(config, "annotate", *SLICE)
        assert code != 0

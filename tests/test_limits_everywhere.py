"""Every placement keeps the user's limits: ``--budget`` and ``--retry-failed`` reach several processes, a Ray
cluster (tests/ray_scenario.py), batches and a panel of judges, or the command refuses them in one line."""

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from bench.fake_server import FakeServer, Fault
from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.store.schema import BatchRow, BudgetRow, GuidelinesRow, JudgmentRow, RequirementsRow
from rae.store.store import Store
from tests.fake_batches import FakeBatches
from tests.test_reliability import pairs_file


def priced_config(tmp_path: Path, name: str, url: str, per_million: float = 10.0) -> Path:
    """A project whose model costs ``per_million`` dollars a million input tokens, twice that for output."""
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'store = "sqlite:///{tmp_path / (name + ".db")}"\ntracking_uri = "none"\nworkers = 2\nbatch_poll_s = 0.01\n'
        f'[model]\nname = "openai/judge"\napi_base = "{url}"\nnum_retries = 2\n'
        f'[prices."openai/judge"]\ninput_per_million = {per_million}\noutput_per_million = {2 * per_million}\n'
    )
    return path


def stored_cost(tmp_path: Path, name: str) -> float:
    with Store(f"sqlite:///{tmp_path / (name + '.db')}").session() as session:
        return sum(r.cost_usd or 0.0 for table in (RequirementsRow, GuidelinesRow, JudgmentRow) for r in session.scalars(select(table)))


def ledger(tmp_path: Path, name: str):
    """The run's budget ledger (the only one in the store)."""
    (row,) = stored(tmp_path, name, BudgetRow)
    return row


def stored(tmp_path: Path, name: str, table) -> list:
    with Store(f"sqlite:///{tmp_path / (name + '.db')}").session() as session:
        return list(session.scalars(select(table)))


def test_a_budget_holds_across_two_processes(tmp_path):
    pairs = esci_us().pairs("dev", queries=6, per_query=6)
    listed = pairs_file(tmp_path, "pairs", pairs)
    with FakeServer() as server:
        config = priced_config(tmp_path, "two", server.url)
        run = subprocess.run([sys.executable, "-m", "rae", "annotate", "--pairs", str(listed), "--program", "uncompiled", "--config", str(config),
                              "--processes", "2", "--budget", "0.15"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "spent of the budget of $0.1500; the budget stopped the run" in run.stdout
    assert 0 < stored_cost(tmp_path, "two") <= 0.15 and 0 < ledger(tmp_path, "two").spent_usd <= 0.15
    assert len(stored(tmp_path, "two", JudgmentRow)) < len(pairs)


def test_a_batch_sends_only_what_its_budget_allows(tmp_path):
    slice_ = ["--split", "dev", "--queries", "3", "--per-query", "4", "--program", "uncompiled"]
    with FakeBatches() as batches:
        config = priced_config(tmp_path, "batch", batches.url, per_million=1000.0)
        # A batch request costs (100 x $1,000 + 10 x $2,000) / 1e6 x 0.5 = $0.06, and reserves its most: its bytes as
        # tokens and its max_tokens, at the batch price: a budget of $5 sends some of the 18 and holds the rest back.
        result = CliRunner().invoke(app, ["annotate", *slice_, "--batch", "--budget", "5", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "the budget stopped the run" in result.stdout
    sent = sum(r.requests for r in stored(tmp_path, "batch", BatchRow))
    assert 0 < sent < 3 + 3 + 12 and stored_cost(tmp_path, "batch") <= 5 and ledger(tmp_path, "batch").spent_usd <= 5


def test_a_batch_asks_its_stored_failures_again_with_retry_failed(tmp_path):
    slice_ = ["--split", "dev", "--queries", "2", "--per-query", "3", "--program", "uncompiled"]
    judgment = lambda entry: "[[ ## product ## ]]" in entry["body"]["messages"][-1]["content"]  # noqa: E731
    with FakeBatches(garbage=judgment) as batches:
        config = priced_config(tmp_path, "retry", batches.url, per_million=1000.0)
        first = CliRunner().invoke(app, ["annotate", *slice_, "--batch", "--config", str(config)])
        assert first.exit_code == 0, first.output
        assert "6 pairs: 0 judged, 6 failed to parse" in first.stdout
        batches.garbage = lambda entry: False
        again = CliRunner().invoke(app, ["annotate", *slice_, "--batch", "--config", str(config)])
        assert "0 LM calls made" in again.stdout  # stored failures serve, unless asked again
        retried = CliRunner().invoke(app, ["annotate", *slice_, "--batch", "--retry-failed", "--config", str(config)])
    assert retried.exit_code == 0, retried.output
    assert "6 pairs: 6 judged, 0 failed to parse" in retried.stdout
    assert {r.status for r in stored(tmp_path, "retry", JudgmentRow)} == {"ok"}


def panel_config(tmp_path: Path, url: str) -> Path:
    judges = "".join(f'[judges.{n}]\nname = "openai/judge-{n}"\napi_base = "{url}"\n' for n in ("a", "b"))
    prices = "".join(f'[prices."openai/judge-{n}"]\ninput_per_million = 10.0\noutput_per_million = 20.0\n' for n in ("a", "b"))
    path = tmp_path / "panel.toml"
    path.write_text(f'store = "sqlite:///{tmp_path / "panel.db"}"\ntracking_uri = "none"\nworkers = 2\n{judges}{prices}')
    return path


def test_a_panel_keeps_one_budget_for_all_its_judges_and_refuses_placements_it_cannot_honour(tmp_path):
    slice_ = ["--split", "dev", "--queries", "3", "--per-query", "4", "--program", "uncompiled"]
    with FakeServer() as server:
        config = panel_config(tmp_path, server.url)
        refused = CliRunner().invoke(app, ["annotate", *slice_, "--judges", "a,b", "--processes", "2", "--config", str(config)])
        assert refused.exit_code != 0 and "takes no --processes, --ray, --batch or --batch-file" in str(refused.exception)
        estimate = CliRunner().invoke(app, ["annotate", *slice_, "--judges", "a,b", "--dry-run", "--config", str(config)])
        assert estimate.exit_code == 0 and estimate.stdout.count("dry run: 12 pairs") == 2
        run = CliRunner().invoke(app, ["annotate", *slice_, "--judges", "a,b", "--budget", "0.1", "--config", str(config)])
    assert run.exit_code == 0, run.output
    assert "spent of the budget of $0.1000; the budget stopped the run" in run.stdout
    total = sum(r.cost_usd or 0.0 for table in (RequirementsRow, GuidelinesRow, JudgmentRow) for r in stored(tmp_path, "panel", table))
    assert 0 < total <= 0.1 and ledger(tmp_path, "panel").spent_usd <= 0.1


def test_a_panel_asks_its_judges_stored_failures_again_with_retry_failed(tmp_path):
    slice_ = ["--split", "dev", "--queries", "2", "--per-query", "2", "--program", "uncompiled"]
    broken = {"judgments": True}

    def faults(number: int, body: dict) -> Fault | None:
        judgment = "[[ ## product ## ]]" in body["messages"][-1]["content"]
        return Fault(garbage="not JSON at all") if judgment and broken["judgments"] else None

    with FakeServer(faults=faults) as server:
        config = panel_config(tmp_path, server.url)
        first = CliRunner().invoke(app, ["annotate", *slice_, "--judges", "a", "--config", str(config)])
        assert first.exit_code == 0 and "4 pairs: 0 judged, 4 failed to parse" in first.stdout
        broken["judgments"] = False
        retried = CliRunner().invoke(app, ["annotate", *slice_, "--judges", "a", "--retry-failed", "--config", str(config)])
    assert retried.exit_code == 0, retried.output
    assert "4 pairs: 4 judged, 0 failed to parse" in retried.stdout

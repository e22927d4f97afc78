import json
from pathlib import Path

from typer.testing import CliRunner

from rae.cli import app

SLICE = ["--split", "dev", "--queries", "3", "--per-query", "8"]


def test_errors_groups_the_disagreements_by_cause_and_a_rerun_costs_nothing(scripted_workspace, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\ntracking_uri = "none"\n')
    assert CliRunner().invoke(app, ["annotate", *SLICE]).exit_code == 0
    agreement = json.loads(CliRunner().invoke(app, ["agreement", *SLICE, "--json"]).stdout)
    disagreements = agreement["n_pairs"] - sum(agreement["confusion"][label][label] for label in agreement["confusion"])
    result = CliRunner().invoke(app, ["errors", *SLICE, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["disagreements"] == disagreements > 0 and report["analysed"] == disagreements
    assert set(report["causes"]) == {"brand", "product_type", "colour", "size", "category", "too_strict", "misread_query", "other"}
    assert sum(report["causes"].values()) == disagreements
    strict = report["examples"].get("too_strict", [])
    assert all(example["judge"] == "irrelevant" for example in strict)
    calls = sum(scripted_workspace.calls.values())
    table = CliRunner().invoke(app, ["errors", *SLICE])
    assert "| too_strict |" in table.stdout and sum(scripted_workspace.calls.values()) == calls

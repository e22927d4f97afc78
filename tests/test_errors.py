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
    # The scripted analyst names "too_strict" exactly when the judge said irrelevant, else "product_type".
    confusion = agreement["confusion"]
    judged_irrelevant_wrongly = sum(row["irrelevant"] for human, row in confusion.items() if human != "irrelevant")
    assert report["causes"]["too_strict"] == judged_irrelevant_wrongly > 0
    assert report["causes"]["product_type"] == disagreements - judged_irrelevant_wrongly
    assert sum(report["causes"].values()) == disagreements
    strict = report["examples"]["too_strict"]
    assert strict and {example["judge"] for example in strict} == {"irrelevant"}
    calls = sum(scripted_workspace.calls.values())
    table = CliRunner().invoke(app, ["errors", *SLICE])
    assert f"| too_strict | {judged_irrelevant_wrongly} |" in table.stdout and "| brand | 0 |" in table.stdout
    assert sum(scripted_workspace.calls.values()) == calls  # the causes came from the store

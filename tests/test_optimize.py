import json
from pathlib import Path

import dspy
import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.optimize.metric import agreement_metric, feedback_metric, label_agreement
from rae.programs.artifacts import list_artifacts, load_artifact
from rae.programs.product_text import product_text
from tests.scripted import default_answer, field_text


def test_adjacent_labels_score_half_and_demos_must_be_exact():
    assert label_agreement("highly_relevant", "highly_relevant") == 1.0
    assert label_agreement("highly_relevant", "acceptable_substitute") == 0.5
    assert label_agreement("irrelevant", "highly_relevant") == 0.0
    assert label_agreement("irrelevant", "garbage") == 0.0
    example = dspy.Example(query="q", label="acceptable_substitute", esci="S")
    near = dspy.Prediction(label="highly_relevant")
    assert agreement_metric(example, near) == 0.5 and agreement_metric(example, near, trace=[]) is False
    feedback = feedback_metric(example, near)
    assert feedback.score == 0.5 and "labelled this product acceptable_substitute (ESCI S" in feedback.feedback


SMALL = ["--train-queries", "3", "--dev-queries", "2", "--test-queries", "2", "--per-query", "4", "--no-mlflow"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\n')
    return tmp_path


def learns_from_demos():
    """A judge that knows the human label when its prompt carries demos, and says irrelevant when it does not."""
    data = esci_us()
    human = {(j.query, product_text(data.catalog[j.product_id])): str(j.label) for j in data.judgments}

    def script(stage, request):
        if stage != "judgment":
            return default_answer(stage, request)
        has_demos = len(request.messages) > 1
        label = human.get((field_text(request, "query"), field_text(request, "product")), "irrelevant") if has_demos else "irrelevant"
        return {"reasoning": "demos help" if has_demos else "no demos", "label": label}

    return script


@pytest.mark.parametrize(
    ("optimizer", "options"),
    [
        ("labeled", []),
        # No labelled demos: the candidates that win are the bootstrapped ones, which DSPy marks as compiled.
        ("random-search", ["--labeled-demos", "0"]),
    ],
)
def test_optimize_writes_a_versioned_artifact_that_the_other_commands_load(scripted_workspace, project, optimizer, options):
    scripted_workspace.script = learns_from_demos()
    result = CliRunner().invoke(app, ["optimize", "--optimizer", optimizer, *options, "--json", *SMALL])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["artifact"] == "judge-smollm2-v1"
    manifest = list_artifacts(project / "programs")[0]
    assert manifest.model == "local/smollm2" and manifest.optimizer["name"] == optimizer
    assert manifest.dataset["train"] == {"queries": 3, "pairs": 12} and manifest.dataset["fingerprint"]
    for split in ("dev", "test"):
        assert set(manifest.scores[split]) == {"uncompiled", "compiled"}
        assert set(manifest.scores[split]["compiled"]["kappa"]) == {"value", "ci_low", "ci_high"}
    assert manifest.git_commit and manifest.created and manifest.dspy_version == dspy.__version__
    for split in ("dev", "test"):  # the optimizer found the program that agrees with the humans
        assert manifest.scores[split]["compiled"]["accuracy"]["value"] == 1.0
        assert manifest.scores[split]["uncompiled"]["accuracy"]["value"] < 1.0
    annotator, _ = load_artifact("judge-smollm2-v1", project / "programs")
    demos = annotator.judge.judge.predict.demos
    assert demos, "the compiled judge carries demos"
    if optimizer == "random-search":
        assert all("reasoning" in demo for demo in demos)  # bootstrapped: the judge's own reasoning is in the demo
    assert manifest.program_hashes["judge"] != manifest.program_hashes["guidelines"]

    # The default program is now the artifact: its judge hash is in the header, and its test score is reproduced
    # from the store without a single call.
    calls = sum(scripted_workspace.calls.values())
    report = CliRunner().invoke(app, ["agreement", "--split", "test", "--queries", "2", "--per-query", "4", "--json"])
    assert report.exit_code == 0, report.output
    agreement = json.loads(report.stdout)
    assert agreement["program"] == "judge-smollm2-v1"
    assert agreement["kappa"] == manifest.scores["test"]["compiled"]["kappa"]
    assert sum(scripted_workspace.calls.values()) == calls
    uncompiled = json.loads(CliRunner().invoke(app, ["agreement", "--split", "test", "--queries", "2", "--per-query", "4", "--json", "--program", "uncompiled"]).stdout)
    assert uncompiled["judge_hash"] != agreement["judge_hash"] and uncompiled["guidelines_hash"] == agreement["guidelines_hash"]

    evaluated = CliRunner().invoke(app, ["evaluate", "--split", "test", "--queries", "2", "--k", "3", "--engines", "bm25-title", "--no-mlflow"])
    assert evaluated.exit_code == 0, evaluated.output
    assert f"(program judge-smollm2-v1, judge {agreement['judge_hash'][:16]})" in evaluated.stdout  # the evaluator reruns it

    listed = CliRunner().invoke(app, ["programs", "list"])
    assert "judge-smollm2-v1" in listed.output and optimizer in listed.output
    second = CliRunner().invoke(app, ["optimize", "--optimizer", optimizer, *options, "--json", *SMALL])
    assert json.loads(second.stdout)["artifact"] == "judge-smollm2-v2"


def test_an_unknown_program_is_a_clear_error(project):
    from rae.config import load_settings
    from rae.programs.artifacts import ArtifactError
    from rae.workspace import Workspace

    workspace = Workspace(load_settings().with_overrides(program="judge-nope-v9"))
    with pytest.raises(ArtifactError, match="no compiled program 'judge-nope-v9'"):
        _ = workspace.annotator


def test_tune_runs_a_resumable_study_and_saves_the_best_trial(scripted_workspace, project):
    scripted_workspace.script = learns_from_demos()
    args = ["tune", "--trials", "3", "--train-queries", "2", "--dev-queries", "2", "--per-query", "3", "--json"]
    first = CliRunner().invoke(app, [*args, "--no-save"])
    assert first.exit_code == 0, first.output
    study = json.loads(first.stdout)
    assert len(study["trials"]) == 3 and study["storage"].endswith(".rae/optuna.db")
    assert {"demos", "fields", "budget", "chain_of_thought"} <= set(study["best"])
    best_with_demos = [t for t in study["trials"] if t["demos"] > 0]
    assert all(t["kappa"] >= s["kappa"] for t in best_with_demos for s in study["trials"] if s["demos"] == 0)

    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert len(again["trials"]) == 6  # the same study, continued
    assert again["artifact"] == "tuned-smollm2-v1"
    manifest = list_artifacts(project / "programs")[0]
    assert manifest.optimizer["name"] == "labeled" and manifest.product_text["budget"] == again["best"]["budget"]

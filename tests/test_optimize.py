import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import dspy
import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import load_settings
from rae.datasets.bundled import esci_us
from rae.optimize.metric import agreement_metric, feedback_metric, label_agreement
from rae.programs.annotator import Annotator
from rae.programs.artifacts import COMPILED_DIR, list_artifacts, load_artifact, save_artifact
from rae.programs.fingerprint import program_fingerprint
from rae.programs.judge import RelevanceJudge
from rae.programs.product_text import product_text
from rae.programs.validators import reasoning_problem
from rae.scaleout.ray_cluster import pinned_program, portable
from rae.workspace import Workspace
from tests.conftest import install_scripted
from tests.scripted import ScriptedEngine, default_answer, field_text


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


@dataclass
class Optimized:
    """A project in which ``rae optimize`` just wrote its first artifact, with the scripted model still installed."""

    project: Path
    optimizer: str
    options: list[str]
    output: dict
    scripted: ScriptedEngine

    @property
    def manifest(self):
        return list_artifacts(self.project / "programs")[0]

    def calls(self) -> int:
        return sum(self.scripted.calls.values())


@pytest.fixture(
    scope="module",
    params=[
        ("labeled", []),
        # No labelled demos: the candidates that win are the bootstrapped ones, which DSPy marks as compiled.
        ("random-search", ["--labeled-demos", "0"]),
    ],
    ids=["labeled", "random-search"],
)
def optimized(request, tmp_path_factory) -> Iterator[Optimized]:
    optimizer, options = request.param
    project = tmp_path_factory.mktemp(optimizer)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(project)
        (project / "rae.toml").write_text('programs_dir = "programs"\n')
        scripted = install_scripted(monkeypatch, ScriptedEngine(learns_from_demos()))
        result = CliRunner().invoke(app, ["optimize", "--optimizer", optimizer, *options, "--json", *SMALL])
        assert result.exit_code == 0, result.output
        yield Optimized(project, optimizer, options, json.loads(result.stdout), scripted)


def test_optimize_writes_a_versioned_artifact_with_its_provenance(optimized):
    manifest = optimized.manifest
    assert optimized.output["artifact"] == manifest.artifact_id == "judge-smollm2-v1"
    assert manifest.model == "local/smollm2" and manifest.optimizer["name"] == optimized.optimizer
    assert manifest.dataset["train"] == {"queries": 3, "pairs": 12} and manifest.dataset["fingerprint"]
    assert manifest.git_commit and manifest.created and manifest.dspy_version == dspy.__version__
    assert manifest.program_hashes["judge"] != manifest.program_hashes["guidelines"]


def test_the_manifest_scores_both_programs_on_dev_and_test_with_intervals(optimized):
    scores = optimized.manifest.scores
    for split in ("dev", "test"):
        assert set(scores[split]) == {"uncompiled", "compiled"}
        assert set(scores[split]["compiled"]["kappa"]) == {"value", "ci_low", "ci_high", "note"}


def test_the_compiled_program_agrees_with_the_humans_where_the_uncompiled_did_not(optimized):
    scores = optimized.manifest.scores
    for split in ("dev", "test"):
        assert scores[split]["compiled"]["accuracy"]["value"] == 1.0
        assert scores[split]["uncompiled"]["accuracy"]["value"] < 1.0


def test_the_compiled_judge_carries_its_demos(optimized):
    annotator, _ = load_artifact("judge-smollm2-v1", optimized.project / "programs")
    demos = annotator.judge.judge.predict.demos
    assert len(demos) >= 1
    if optimized.optimizer == "random-search":  # bootstrapped: the judge's own reasoning is in each demo
        assert all(demo.get("reasoning") for demo in demos)


def test_agreement_uses_the_artifact_by_default_and_reproduces_its_test_score_from_the_store(optimized):
    calls = optimized.calls()
    report = CliRunner().invoke(app, ["agreement", "--split", "test", "--queries", "2", "--per-query", "4", "--json"])
    assert report.exit_code == 0, report.output
    agreement = json.loads(report.stdout)
    assert agreement["program"] == "judge-smollm2-v1"
    assert agreement["kappa"] == optimized.manifest.scores["test"]["compiled"]["kappa"]
    assert optimized.calls() == calls


def test_the_artifact_is_a_program_of_its_own_that_shares_the_guidelines(optimized):
    def described(*extra: str) -> dict:
        args = ["agreement", "--split", "test", "--queries", "2", "--per-query", "4", "--json", *extra]
        return json.loads(CliRunner().invoke(app, args).stdout)

    compiled, uncompiled = described(), described("--program", "uncompiled")
    assert uncompiled["program_fingerprint"] != compiled["program_fingerprint"]
    hashes = optimized.manifest.program_hashes  # the artifact's stages: its judge is fitted, its guideline writer is not
    plain = Annotator()
    assert hashes["judge"] != program_fingerprint(plain.judge) and hashes["guidelines"] == program_fingerprint(plain.guidelines)


def test_evaluate_reruns_the_artifact_and_names_it(optimized):
    evaluated = CliRunner().invoke(app, ["evaluate", "--split", "test", "--queries", "2", "--k", "3", "--engines", "bm25-title", "--no-mlflow"])
    assert evaluated.exit_code == 0, evaluated.output
    fingerprint = program_fingerprint(load_artifact("judge-smollm2-v1", Path("programs"))[0])
    assert f"(program judge-smollm2-v1, {fingerprint})" in evaluated.stdout


def test_programs_list_shows_the_artifact(optimized):
    listed = CliRunner().invoke(app, ["programs", "list"])
    assert "judge-smollm2-v1" in listed.output and optimized.optimizer in listed.output


def test_optimizing_again_writes_version_two(optimized):
    second = CliRunner().invoke(app, ["optimize", "--optimizer", optimized.optimizer, *optimized.options, "--json", *SMALL])
    try:
        assert json.loads(second.stdout)["artifact"] == "judge-smollm2-v2"
    finally:
        shutil.rmtree(optimized.project / "programs" / "judge-smollm2-v2", ignore_errors=True)


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
    # The scripted judge knows the human label only with demos in its prompt and the product text it was keyed on:
    # the seeded study finds such a trial, and it is the best.
    assert study["best"]["kappa"] == 1.0 and study["best"]["demos"] > 0
    assert study["best"]["kappa"] == max(t["kappa"] for t in study["trials"])

    again = json.loads(CliRunner().invoke(app, args).stdout)
    assert len(again["trials"]) == 6  # the same study, continued
    assert again["artifact"] == "tuned-smollm2-v1"
    manifest = list_artifacts(project / "programs")[0]
    assert manifest.optimizer["name"] == "labeled" and manifest.product_text["budget"] == again["best"]["budget"]


def test_a_bootstrapped_demo_with_filler_reasoning_is_never_kept(engine):
    """The judge is always right, but writes DSPy's filler as its reasoning for half the products. Bootstrapping (the
    step every rae optimizer but ``labeled`` builds its demos with) keeps a trace as a demo only if rae's metric
    passes it: the traces with filler must not become demos, the others may."""
    data = esci_us()
    judgments = data.select("train", 3, 4)
    filler_products = {j.product_id for i, j in enumerate(judgments) if i % 2 == 0}

    def script(stage, request):
        product = field_text(request, "product")
        filler = any(data.catalog[p].title in product for p in filler_products)
        reasoning = "Not supplied for this particular example." if filler else "The listing says what it is; the guidelines decide."
        human = next(str(j.label) for j in judgments if data.catalog[j.product_id].title in product)
        return {"reasoning": reasoning, "label": human}

    engine.script = script
    trainset = [
        dspy.Example(query=j.query, guidelines="g", product=product_text(data.catalog[j.product_id]), label=str(j.label)).with_inputs(
            "query", "guidelines", "product"
        )
        for j in judgments
    ]
    compiled = dspy.BootstrapFewShot(metric=agreement_metric, max_bootstrapped_demos=len(trainset), max_labeled_demos=0).compile(
        RelevanceJudge(), trainset=trainset
    )
    demos = compiled.judge.predict.demos
    assert len(demos) == len(trainset) - len(filler_products)  # every right trace with real reasoning, and no other
    assert all(reasoning_problem(demo["query"], demo["reasoning"]) is None for demo in demos)


def test_a_compiled_program_is_saved_in_the_project_never_in_raes_package_and_the_shipped_ones_still_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no rae.toml: no programs_dir
    workspace = Workspace(load_settings())
    shipped = list_artifacts(COMPILED_DIR)
    assert workspace.programs_dir == Path("programs") and shipped
    assert [m.artifact_id for m in list_artifacts(workspace.program_dirs)] == [m.artifact_id for m in shipped]
    program, manifest = load_artifact(shipped[-1].artifact_id, workspace.program_dirs)
    directory = save_artifact(program, replace(manifest, created=""), workspace.programs_dir, workspace.program_dirs)  # as rae optimize does
    assert directory.resolve() == (tmp_path / "programs" / f"{manifest.name}-v{shipped[-1].version + 1}").resolve()
    assert [m.artifact_id for m in list_artifacts(COMPILED_DIR)] == [m.artifact_id for m in shipped]
    assert load_artifact(directory.name, workspace.program_dirs)[1].version == shipped[-1].version + 1


def test_a_ray_task_runs_the_program_the_driver_chose_wherever_it_runs(tmp_path, monkeypatch):
    """A task in another directory cannot see the project's ./programs: the driver pins its program and the directory
    that holds it, the project's when it chose the project's artifact, rae's own when it chose a shipped one."""
    monkeypatch.chdir(tmp_path)
    driver = Workspace(load_settings())
    shipped = driver.manifest
    assert shipped is not None and pinned_program(driver) == {"program": shipped.artifact_id, "programs_dir": str(COMPILED_DIR.resolve())}
    program, manifest = load_artifact(shipped.artifact_id, driver.program_dirs)
    save_artifact(program, replace(manifest, created="9999-01-01T00:00:00+00:00"), driver.programs_dir, driver.program_dirs)
    newer = Workspace(load_settings())
    pinned = pinned_program(newer)
    assert pinned == {"program": newer.manifest.artifact_id, "programs_dir": str((tmp_path / "programs").resolve())}
    settings = portable(newer)  # in the driver's directory, as ray_cluster does before it sends the tasks
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    task = Workspace(settings)
    assert task.manifest.artifact_id == newer.manifest.artifact_id and task.annotator is not None

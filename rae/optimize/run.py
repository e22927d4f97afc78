"""``rae optimize``: compile on train, select on dev, report on test, save the artifact.

The compiled and the uncompiled program are both scored on the same dev and test pairs through the store, with the
agreement report (kappa with a bootstrap CI over queries), so the artifact's manifest carries numbers that
``rae agreement --program <artifact>`` reproduces without a single new call.
"""

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any

from rae.datasets.records import Rating
from rae.optimize.compile import Budget, OptimizerName, compile_module
from rae.optimize.examples import judge_examples, pipeline_examples
from rae.programs.annotator import Annotator
from rae.programs.artifacts import Manifest, save_artifact
from rae.programs.fingerprint import program_fingerprint
from rae.studies.agreement import AgreementReport
from rae.studies.scoring import judge_and_compare
from rae.workspace import Workspace


@dataclass(frozen=True)
class Slices:
    """How much of each split the optimizer sees: the first N queries, at most ``per_query`` pairs each."""

    train_queries: int = 12
    dev_queries: int = 8
    test_queries: int = 8
    per_query: int = 6


@dataclass
class OptimizeOutcome:
    optimizer: str
    manifest: Manifest
    directory: str
    reports: dict[str, dict[str, AgreementReport]]
    compile_calls: int
    compile_tokens: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"artifact": self.manifest.artifact_id, "directory": self.directory, "scores": self.manifest.scores,
                "compile_lm_calls": self.compile_calls, "seconds": self.seconds}

    def markdown(self) -> str:
        lines = [
            f"compiled {self.manifest.artifact_id} with {self.optimizer} in {self.seconds / 60:.1f} min "
            f"({self.compile_calls} LM calls, {self.compile_tokens:,} tokens while compiling)",
            "",
            "| split | program | kappa [95% CI] | weighted kappa | accuracy | pairs |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for split, by_program in self.reports.items():
            for program, report in by_program.items():
                lines.append(
                    f"| {split} | {program} | {report.kappa} | {report.weighted_kappa.value:.3f} | {report.accuracy.value:.3f} | {report.n_pairs} |"
                )
        return "\n".join([*lines, "", f"artifact: {self.directory}"])

    def mlflow_fields(self) -> tuple[dict[str, Any], dict[str, float | None]]:
        manifest = self.manifest
        metrics = {
            f"{split}.{program}.{metric}": scores[metric]["value"]
            for split, by_program in manifest.scores.items()
            for program, scores in by_program.items()
            for metric in ("kappa", "weighted_kappa", "accuracy")
        }
        params = {"artifact": manifest.artifact_id, "model": manifest.model, **{f"optimizer.{k}": v for k, v in manifest.optimizer.items()}}
        return params, metrics


def optimize_program(
    workspace: Workspace,
    optimizer: OptimizerName,
    budget: Budget,
    slices: Slices,
    name: str,
    whole_program: bool = False,
    progress: bool = True,
) -> OptimizeOutcome:
    started = time.perf_counter()
    data, catalog = workspace.labelled, workspace.labelled.catalog
    base = workspace.annotator
    chosen = {
        "train": data.select("train", slices.train_queries, slices.per_query),
        "dev": data.select("dev", slices.dev_queries, slices.per_query),
        "test": data.select("test", slices.test_queries, slices.per_query),
    }
    judging = workspace.judging()
    if whole_program:
        trainset = pipeline_examples(chosen["train"], catalog, workspace.text_spec)
        valset = pipeline_examples(chosen["dev"], catalog, workspace.text_spec)
    else:
        trainset = judge_examples(judging, chosen["train"], catalog, workspace.workers, progress)
        valset = judge_examples(judging, chosen["dev"], catalog, workspace.workers, progress)
    before = judging.calls.counted()
    # DSPy's optimizers print their progress; stdout is kept for rae's own output (--json must stay parseable).
    with judging.context(history=True), contextlib.redirect_stdout(sys.stderr):
        compiled = compile_program(base, optimizer, trainset, valset, budget, whole_program)
    spent = judging.calls.counted() - before
    judging.flush()
    reports = {
        split: {
            "uncompiled": score_program(workspace, base, chosen[split], progress),
            "compiled": score_program(workspace, compiled, chosen[split], progress),
        }
        for split in ("dev", "test")
    }
    manifest = Manifest(
        name=name,
        version=0,
        model=workspace.settings.model.name,
        model_identity=workspace.model.identity,
        guidelines=base.guideline_mode,
        chain_of_thought=base.judge.chain_of_thought,
        judge_mode=base.judge_mode,
        product_text=workspace.text_spec.model_dump(mode="json"),
        optimizer={"name": optimizer, "whole_program": whole_program, **budget.as_dict()},
        dataset={
            "name": data.name,
            "fingerprint": data.fingerprint(),
            **{split: {"queries": len({j.query_id for j in js}), "pairs": len(js)} for split, js in chosen.items()},
        },
        scores={split: {program: _scores(report) for program, report in by_program.items()} for split, by_program in reports.items()},
        program_hashes={stage: program_fingerprint(getattr(compiled, stage)) for stage in ("requirements", "guidelines", "judge")},
    )
    directory = save_artifact(compiled, manifest, workspace.programs_dir, workspace.program_dirs)
    return OptimizeOutcome(optimizer, manifest, str(directory), reports, spent.calls, spent.tokens, round(time.perf_counter() - started, 1))


def compile_program(base: Annotator, optimizer: OptimizerName, trainset: list, valset: list, budget: Budget, whole_program: bool = False) -> Annotator:
    """A compiled copy of ``base``: its judge compiled, or with ``whole_program`` every predictor. What the optimizer
    fitted is carried into a copy of ``base`` through DSPy's saved state (``dump_state``/``load_state``), so the
    program that is saved and run is ``base``'s own class, with nothing of the search left on it."""
    program = base.deepcopy()
    if whole_program:
        program.load_state(compile_module(base, optimizer, trainset, valset, budget).dump_state())
    else:
        program.judge.load_state(compile_module(base.judge, optimizer, trainset, valset, budget).dump_state())
    return program


def score_program(workspace: Workspace, program: Annotator, judgments: list[Rating], progress: bool = True) -> AgreementReport:
    """Judge the pairs with ``program`` through the store, then its agreement with the humans."""
    return judge_and_compare(workspace, judgments, program, progress).report


def _scores(report: AgreementReport) -> dict[str, Any]:
    return {
        "kappa": vars(report.kappa),
        "weighted_kappa": vars(report.weighted_kappa),
        "accuracy": vars(report.accuracy),
        "alpha": vars(report.alpha),
        "n_pairs": report.n_pairs,
        "n_failed": report.n_failed,
        "baseline_accuracy": report.baseline_accuracy,
    }

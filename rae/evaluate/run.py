"""``rae evaluate`` as one run: judge every engine's results through the store, score, compare, write the report.

The engines' results are retrieved once, before (a dry run and a budget read the same pairs that are then judged).
The run is recorded in the store with what each engine cost in LM calls.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rae.annotate.spending import Budget, BudgetState, budget_state
from rae.annotate.summary import AnnotationSummary
from rae.datasets.records import Pair, Query
from rae.evaluate.evaluation import Evaluation, evaluate_engines, human_gains_for
from rae.evaluate.report import evaluation_json, markdown, mlflow_fields, write_report
from rae.evaluate.stored_run import drawn_for, known_at_draw, population_of
from rae.retrieve.rankings import Retrieval
from rae.scaleout.runner import Placement, annotate_pairs
from rae.workspace import Workspace


@dataclass
class EvaluationRun:
    run_id: str
    evaluation: Evaluation
    described: dict[str, Any]
    report_dir: Path
    mlflow_run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result = {**evaluation_json(self.evaluation, self.described), "report": str(self.report_dir)}
        if (budget := self.budget) is not None:
            result["budget"] = {**asdict(budget), "stopped": budget.stopped}
        return result | ({"mlflow_run_id": self.mlflow_run_id} if self.mlflow_run_id else {})

    @property
    def budget(self) -> BudgetState | None:
        """The run's ledger as its judging ended (None: no --budget)."""
        return next((engine.annotation.budget for engine in self.evaluation.engines if engine.annotation.budget is not None), None)

    def markdown(self) -> str:
        lines = [markdown(self.evaluation, self.described)]
        for engine in self.evaluation.engines:
            summary = engine.annotation
            left = f", {summary.not_judged} not judged" if summary.not_judged else ""
            lines.append(
                f"{engine.name}: {summary.pairs} pairs, {summary.new_pairs_judged} new pairs judged with "
                f"{summary.lm_calls['judgment']} judgment calls, {summary.from_store} from the store{left}"
            )
        if self.budget is not None:
            lines.append(self.budget.line())
        lines.append(f"report: {self.report_dir}/report.html")
        return "\n".join(lines)

    def mlflow_fields(self) -> tuple[dict[str, Any], dict[str, float | None]]:
        return mlflow_fields(self.as_dict())


def run_evaluation(
    workspace: Workspace, retrievals: list[Retrieval], queries: list[Query], k: int, budget: Budget | None, progress: bool,
    placement: Placement = Placement(),
) -> EvaluationRun:
    settings = {**workspace.settings.model_dump(), "engines": [r.name for r in retrievals], "k": k}
    drawn = drawn_for(workspace.store, population_of([q.query_id for q in queries]))
    with workspace.store.recorded_run("evaluate", settings) as run:
        elsewhere = None
        if placement != Placement():
            def elsewhere(pairs: list[Pair]) -> AnnotationSummary:
                return annotate_pairs(workspace, pairs, placement, run.run_id, budget=budget, progress=progress)
        evaluation = evaluate_engines(
            retrievals, queries, workspace.judging(run.run_id), workspace.labelled.catalog, k, workspace.workers,
            human_gains_for(queries, workspace.human_labels), progress, budget, drawn, elsewhere, known_at_draw(workspace, queries, drawn),
        )
        if budget is not None:
            state = budget_state(workspace.store, budget)
            for engine in evaluation.engines:
                engine.annotation.budget = state
        described = {**workspace.describe(), "run_id": run.run_id}
        report_dir = write_report(evaluation, described, Path(workspace.settings.reports_dir) / run.run_id)
        run.counts = {engine.name: engine.annotation.total_calls for engine in evaluation.engines}
    return EvaluationRun(run.run_id, evaluation, described, report_dir)

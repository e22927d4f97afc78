"""``rae errors``: the judge's disagreements with the humans, grouped by cause.

Each disagreement on a split (the judge's stored label differs from the human's) goes to the error analyst with the
query's requirements; the cause it names is stored like any other step, so a second run costs nothing. Hard
disagreements (irrelevant against highly relevant) come first when there are more disagreements than ``limit``.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import dspy

from rae.annotate.concurrency import each_concurrently
from rae.annotate.steps import Answer, StepOutcome, StoredSteps
from rae.datasets.records import HumanJudgment, Pair, Product
from rae.labels import Label, is_hard_disagreement
from rae.lm.recorder import recorded_call
from rae.programs.error_cause import CAUSES, ErrorAnalyst
from rae.programs.hashing import program_hash
from rae.programs.product_text import product_text
from rae.store.keys import key_for
from rae.store.schema import ErrorCauseRow, JudgmentRow
from rae.workspace import Workspace

EXAMPLES_PER_CAUSE = 5


@dataclass
class ErrorAnalysis:
    disagreements: int = 0
    analysed: int = 0
    failed: int = 0
    causes: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "disagreements": self.disagreements,
            "analysed": self.analysed,
            "failed": self.failed,
            "causes": {cause: self.causes.get(cause, 0) for cause in CAUSES},
            "examples": self.examples,
        }

    def markdown(self) -> str:
        lines = [
            f"{self.disagreements} disagreements with the human labels; {self.analysed} analysed, {self.failed} failed",
            "",
            "| cause | pairs |",
            "| --- | --- |",
        ]
        lines += [f"| {cause} | {count} |" for cause, count in self.as_dict()["causes"].items()]
        for cause, examples in self.examples.items():
            lines += ["", f"{cause}:"]
            lines += [
                f"- {e['query']!r} / {e['product'][:60]!r}: human {e['human']}, judge {e['judge']}. {e['explanation']}" for e in examples[:3]
            ]
        return "\n".join(lines)


def analyse_errors(workspace: Workspace, humans: list[HumanJudgment], limit: int = 100, progress: bool = True) -> ErrorAnalysis:
    catalog = workspace.labelled.catalog
    steps = workspace.steps()
    outcomes = steps.stored_judgments([h.pair for h in humans], catalog)
    disagreements = [
        (human, outcomes[human.pair].value)
        for human in humans
        if outcomes[human.pair].ok and Label(outcomes[human.pair].value.label) is not human.label
    ]
    disagreements.sort(key=lambda d: not is_hard_disagreement(d[0].label, Label(d[1].label)))  # the hard ones first
    analysis = ErrorAnalysis(disagreements=len(disagreements))
    analyst = ErrorAnalyst()

    def explain(case: tuple[HumanJudgment, JudgmentRow]) -> StepOutcome[ErrorCauseRow]:
        human, judgment = case
        return error_cause(steps, analyst, human.pair, catalog[human.product_id], human.label, judgment)

    with workspace.using_model():
        explained = each_concurrently(disagreements[:limit], explain, workspace.workers, progress, "disagreements")
    for (human, judgment), outcome in zip(disagreements[:limit], explained, strict=True):
        if not outcome.ok:
            analysis.failed += 1
            continue
        analysis.analysed += 1
        row = outcome.value
        analysis.causes[row.cause] += 1
        examples = analysis.examples.setdefault(row.cause, [])
        if len(examples) < EXAMPLES_PER_CAUSE:
            examples.append(
                {"query": human.query, "product": catalog[human.product_id].title, "human": str(human.label), "judge": judgment.label,
                 "explanation": row.explanation or ""}
            )
    return analysis


def error_cause(
    steps: StoredSteps, analyst: dspy.Module, pair: Pair, product: Product, human: Label, judgment: JudgmentRow
) -> StepOutcome[ErrorCauseRow]:
    """Why the judge's label differs from the human's, named by ``analyst`` from the query's requirements; stored."""
    requirements = steps.requirements(pair.query)
    stated = requirements.value or []
    inputs = {
        "query": pair.query,
        "requirements": stated,
        "product": product_text(product, steps.text_spec),
        "human_label": str(human),
        "judge_label": judgment.label,
        "judge_reasoning": judgment.reasoning or "",
    }
    content = {**inputs, "requirements": [r.model_dump() for r in stated]}
    through = steps.stored_call(
        ErrorCauseRow,
        key_for("error_cause", program_hash(analyst), steps.model.identity, content),
        lambda: Answer(recorded_call(analyst, steps.model.call_policy, **inputs)),
        lambda answer: ErrorCauseRow(
            query_id=pair.query_id,
            product_id=pair.product_id,
            human_label=str(human),
            judge_label=judgment.label,
            cause=str(answer.record.prediction.cause) if answer.record.ok else None,
            explanation=answer.record.prediction.explanation if answer.record.ok else None,
        ),
    )
    row = through.row
    status = "missing" if row is None else row.status
    return StepOutcome(row, status, through.cached, through.spend + requirements.spend)

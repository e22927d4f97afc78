"""``rae errors``: the judge's disagreements with the humans, grouped by cause.

Each disagreement on a split (the judge's stored label differs from the human's) goes to the error analyst with the
query's requirements; the cause it names is stored like any other step, so a second run costs nothing. Hard
disagreements (irrelevant against highly relevant) come first when there are more disagreements than ``limit``.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rae.datasets.records import HumanJudgment, Pair
from rae.eval.annotate import each_concurrently
from rae.labels import Label
from rae.programs.error_cause import CAUSES, ErrorAnalyst
from rae.workspace import Workspace

HARD = {Label.IRRELEVANT, Label.HIGHLY_RELEVANT}


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


def analyse_errors(workspace: Workspace, humans: list[HumanJudgment], limit: int = 100, progress: bool = True) -> ErrorAnalysis:
    catalog = workspace.labelled.catalog
    steps = workspace.steps()
    pairs = [Pair(h.query_id, h.query, h.product_id) for h in humans]
    outcomes = steps.stored_judgments(pairs, catalog)
    disagreements = [
        (human, pair, outcomes[pair].value)
        for human, pair in zip(humans, pairs, strict=True)
        if outcomes[pair].ok and Label(outcomes[pair].value.label) is not human.label
    ]
    disagreements.sort(key=lambda d: {d[0].label, Label(d[2].label)} != HARD)  # the hard ones first, else in order
    analysis = ErrorAnalysis(disagreements=len(disagreements))
    analyst = ErrorAnalyst()

    def explain(case: tuple) -> object:
        human, pair, judgment = case
        return steps.error_cause(analyst, pair, catalog[pair.product_id], human.label, judgment)

    with workspace.using_model():
        explained = each_concurrently(disagreements[:limit], explain, workspace.workers, progress, "disagreements")
    for (human, pair, judgment), outcome in zip(disagreements[:limit], explained, strict=True):
        if not outcome.ok:
            analysis.failed += 1
            continue
        analysis.analysed += 1
        row = outcome.value
        analysis.causes[row.cause] += 1
        examples = analysis.examples.setdefault(row.cause, [])
        if len(examples) < 5:
            examples.append(
                {"query": pair.query, "product": catalog[pair.product_id].title, "human": str(human.label), "judge": judgment.label,
                 "explanation": row.explanation or ""}
            )
    return analysis

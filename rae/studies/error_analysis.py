"""``rae errors``: the judge's disagreements with the humans, grouped by cause.

Each disagreement on a split (the judge's stored label differs from the human's) goes to the error analyst with the
query's requirements; its answer is stored like any other call, so a second run costs nothing. Hard
disagreements (irrelevant against highly relevant) come first when there are more disagreements than ``limit``.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dspy.utils.exceptions import AdapterParseError, LMError

from rae.annotate.judging import Judging, run_to_completion
from rae.annotate.run import each_concurrently
from rae.config import ProductTextSpec
from rae.datasets.records import Product, Rating
from rae.labels import Label, is_hard_disagreement
from rae.lm.calls import call_log
from rae.programs.error_cause import CAUSES, ErrorAnalyst
from rae.programs.product_text import product_text
from rae.programs.requirements import Requirement
from rae.store.schema import JudgmentRow
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


def analyse_errors(workspace: Workspace, humans: list[Rating], limit: int = 100, progress: bool = True) -> ErrorAnalysis:
    catalog = workspace.labelled.catalog
    outcomes = workspace.stored_judgments([h.pair for h in humans])
    disagreements = [
        (human, outcomes[human.pair].value)
        for human in humans
        if outcomes[human.pair].ok and Label(outcomes[human.pair].value.label) is not human.label
    ]
    disagreements.sort(key=lambda d: not is_hard_disagreement(d[0].label, Label(d[1].label)))  # the hard ones first
    analysis = ErrorAnalysis(disagreements=len(disagreements))
    chosen = disagreements[:limit]
    lookup = workspace.judging(allow_calls=False)
    requirements = {q: _requirements(lookup, q) for q in dict.fromkeys(h.query for h, _ in chosen)}
    cases = [_inputs(human, judgment, catalog[human.product_id], requirements[human.query], workspace.text_spec) for human, judgment in chosen]
    explained = run_to_completion(_explained(workspace.judging(), ErrorAnalyst(), cases, workspace.workers, progress))
    for (human, judgment), answer in zip(chosen, explained, strict=True):
        if answer is None:
            analysis.failed += 1
            continue
        analysis.analysed += 1
        cause = str(answer.cause)
        analysis.causes[cause] += 1
        examples = analysis.examples.setdefault(cause, [])
        if len(examples) < EXAMPLES_PER_CAUSE:
            examples.append(
                {"query": human.query, "product": catalog[human.product_id].title, "human": str(human.label), "judge": judgment.label,
                 "explanation": answer.explanation or ""}
            )
    return analysis


def _requirements(lookup: Judging, query: str) -> list[Requirement]:
    """The query's requirements as the program wrote them (from the store), or none."""
    made = lookup.query_guidelines(query)
    return list(made.value.requirements) if made.value is not None else []


def _inputs(human: Rating, judgment: JudgmentRow, product: Product, requirements: list[Requirement], spec: ProductTextSpec) -> dict[str, Any]:
    return {
        "query": human.query,
        "requirements": requirements,
        "product": product_text(product, spec),
        "human_label": str(human.label),
        "judge_label": judgment.label,
        "judge_reasoning": judgment.reasoning or "",
    }


async def _explained(judging: Judging, analyst: ErrorAnalyst, cases: list[dict[str, Any]], workers: int, progress: bool) -> list[Any]:
    """The analyst's answer for each case, through the store (None: it did not parse, or the model failed)."""
    async def explain(inputs: dict[str, Any]) -> Any:
        try:
            with call_log("error_cause"):
                return await analyst.acall(**inputs)
        except (AdapterParseError, LMError):
            return None

    with judging.context():
        try:
            return await each_concurrently(cases, explain, workers, progress, "disagreements")
        finally:
            judging.flush()

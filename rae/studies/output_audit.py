"""``rae audit``: run the output checks over what a store holds, stage by stage.

For each stage (requirements, guidelines, the judge's reasoning) it counts the stored rows, how many are stored as
content (``ok``, or for a judgment a reasoning kept) and how many are flagged (``degenerate``, or a judgment's
reasoning dropped), and, applying today's checks to the stored text, how many rows stored as content are degenerate
by the rules: the number that must be zero. Rows written since outputs are checked also say what the checks found
on the way: how many first answers were degenerate, and how many of those the extra attempts turned into content.
Run on a store written before the checks existed, it measures how much of it was placeholder text.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rae.labels import LABELS
from rae.programs.guidelines import WriteGuidelines
from rae.programs.judge import JudgeRelevance
from rae.programs.requirements import Requirement
from rae.programs.validators import guidelines_problem, prompt_sentences, reasoning_problem, requirements_problem
from rae.store.records import step_records
from rae.store.schema import GuidelinesRow, JudgmentRow, RequirementsRow
from rae.store.store import Store

STAGES = ("requirements", "guidelines", "reasoning")


@dataclass
class StageAudit:
    stage: str
    rows: int = 0  # stored rows that parsed
    stored_as_content: int = 0
    flagged: int = 0  # stored as degenerate (requirements, guidelines) or with the reasoning dropped (judgments)
    content_but_degenerate: int = 0  # stored as content, yet degenerate by today's checks: must be 0
    checked: int = 0  # rows written with the checks on (they record what the checks found)
    first_try_degenerate: int = 0
    made_content: int = 0  # of those, turned into content by the extra attempts
    reasons: Counter = field(default_factory=Counter)  # why rows stored as content are degenerate by the rules

    def share(self, count: int, of: int) -> str:
        return f"{count} of {of} ({count / of:.0%})" if of else "0 of 0"


@dataclass
class OutputAudit:
    scope: str
    stages: dict[str, StageAudit]

    @property
    def degenerate_stored_as_content(self) -> int:
        return sum(audit.content_but_degenerate for audit in self.stages.values())

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "stages": {name: {**vars(a), "reasons": dict(a.reasons)} for name, a in self.stages.items()}}

    def markdown(self) -> str:
        lines = [
            f"Output checks over the store ({self.scope})",
            "",
            "| stage | parsed rows | stored as content | flagged (fallback used) | stored as content but degenerate by the rules | first try degenerate | made content by refining |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for a in self.stages.values():
            first = a.share(a.first_try_degenerate, a.checked) if a.checked else "not recorded"
            made = f"{a.made_content} of {a.first_try_degenerate}" if a.checked else "not recorded"
            lines.append(
                f"| {a.stage} | {a.rows} | {a.stored_as_content} | {a.share(a.flagged, a.rows)} | "
                f"{a.share(a.content_but_degenerate, a.rows)} | {first} | {made} |"
            )
        reasons = [f"- {a.stage}: " + ", ".join(f"{r} {n}" for r, n in a.reasons.most_common()) for a in self.stages.values() if a.reasons]
        return "\n".join(lines + (["", "Why rows stored as content are degenerate by the rules:", *reasons] if reasons else []))


def audit_outputs(store: Store, model_id: str | None = None) -> OutputAudit:
    """Every stored requirement list, guideline set and reasoning (of one model identity, or of all)."""
    stages = {stage: StageAudit(stage) for stage in STAGES}
    for row in step_records(store, RequirementsRow, model_id):
        requirements = [Requirement.model_validate(r) for r in row.requirements]
        _count(stages["requirements"], row, row.status == "ok", requirements_problem(row.query, requirements))
    sentences = prompt_sentences(WriteGuidelines)
    for row in step_records(store, GuidelinesRow, model_id):
        by_label = {str(label): row.guidelines.get(str(label), "") for label in LABELS}
        _count(stages["guidelines"], row, row.status == "ok", guidelines_problem(row.query, by_label, sentences))
    sentences = prompt_sentences(JudgeRelevance)
    for row in step_records(store, JudgmentRow, model_id):
        if row.reasoning is None and "no_reasoning" not in (row.flags or "").split(","):
            continue  # a judge without chain of thought: no reasoning to check
        kept = row.reasoning is not None
        # The guidelines and listing the judge read are not stored with it, so an echo of them is not checked here.
        _count(stages["reasoning"], row, kept, reasoning_problem(row.query, row.reasoning, sentences) if kept else None)
    return OutputAudit("all models" if model_id is None else "this model", stages)


def _count(audit: StageAudit, row: Any, stored_as_content: bool, problem: str | None) -> None:
    audit.rows += 1
    if stored_as_content:
        audit.stored_as_content += 1
        if problem is not None:
            audit.content_but_degenerate += 1
            audit.reasons[problem.split(": ")[-1]] += 1
    else:
        audit.flagged += 1
    if row.validation:
        audit.checked += 1
        audit.first_try_degenerate += row.validation.get("first_try") is not None
        audit.made_content += row.validation.get("first_try") is not None and row.validation.get("final") is None

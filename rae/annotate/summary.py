"""What an annotation run did, and the one closing line a user reads."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rae.annotate.spending import BudgetState, Spend


@dataclass
class AnnotationSummary:
    pairs: int = 0
    judged: int = 0
    failed: int = 0
    from_store: int = 0
    not_judged: int = 0
    no_guidelines: int = 0
    errors: int = 0
    over_budget: bool = False  # the budget refused a call of this run
    budget: BudgetState | None = None  # the run's ledger, read at its end
    spend: dict[str, Spend] = field(default_factory=lambda: {"requirements_guidelines": Spend(), "judgment": Spend()})
    seconds: float = 0.0
    first_error: str | None = None
    queries: int = 0
    deferred: int = 0  # steps waiting for a batch (see rae.scaleout.batch)
    degenerate: Counter = field(default_factory=Counter)  # outputs that said nothing, by stage: requirements, guidelines, reasoning

    @property
    def lm_calls(self) -> dict[str, int]:
        return {stage: spend.calls for stage, spend in self.spend.items()}

    @property
    def total(self) -> Spend:
        return self.spend["requirements_guidelines"] + self.spend["judgment"]

    @property
    def total_calls(self) -> int:
        return self.total.calls

    @property
    def new_pairs_judged(self) -> int:
        """Pairs this run paid a judgment for (stored now, as a label or a parse failure)."""
        return self.pairs - self.from_store - self.not_judged - self.no_guidelines

    def line(self) -> str:
        """The closing line of a run: what was done, what it cost in calls, what is left."""
        calls = self.total_calls
        parts = [
            f"{self.pairs} pairs: {self.judged} judged, {self.failed} failed to parse",
            f"{self.from_store} from the store (cache hits)",
            f"{calls} LM calls made ({self.lm_calls['judgment']} for judgments, "
            f"{self.lm_calls['requirements_guidelines']} for requirements and guidelines)",
        ]
        if calls == 0:
            parts[-1] = "0 LM calls made" + (" (everything was in the store)" if self.from_store == self.pairs else "")
        else:
            total = self.total
            cost = "unknown cost" if total.cost_usd is None else f"${total.cost_usd:.4f}"
            parts.append(f"{total.input_tokens:,} input + {total.output_tokens:,} output tokens, {cost}")
            if total.retries:
                parts.append(f"{total.retries} retries of transient errors")
        if self.not_judged:
            why = "the budget" if self.over_budget and not self.errors else f"{self.errors} LM errors"
            parts.append(f"{self.not_judged} not judged ({why}; rerun to resume)")
        if self.budget is not None:
            parts.append(self.budget.line())
        elif self.over_budget:
            parts.append("the budget stopped the run; rerun with more to continue")
        if self.no_guidelines:
            parts.append(f"{self.no_guidelines} without guidelines (their query's guidelines failed to parse)")
        if self.degenerate:
            parts.append(self.degenerate_line())
        parts.append(duration(self.seconds))
        return "; ".join(parts)

    def __add__(self, other: "AnnotationSummary") -> "AnnotationSummary":
        """Two runs over disjoint pairs (shards of one run, in several processes) as one."""
        spend = {stage: self.spend[stage] + other.spend[stage] for stage in self.spend}
        return AnnotationSummary(
            pairs=self.pairs + other.pairs, judged=self.judged + other.judged, failed=self.failed + other.failed,
            from_store=self.from_store + other.from_store, not_judged=self.not_judged + other.not_judged,
            no_guidelines=self.no_guidelines + other.no_guidelines, errors=self.errors + other.errors,
            over_budget=self.over_budget or other.over_budget, budget=self.budget or other.budget,
            spend=spend, seconds=max(self.seconds, other.seconds), first_error=self.first_error or other.first_error,
            queries=self.queries + other.queries, deferred=self.deferred + other.deferred, degenerate=self.degenerate + other.degenerate,
        )

    def degenerate_line(self) -> str:
        """Outputs that parsed but said nothing, per stage, and what was done instead."""
        said = []
        for stage in ("requirements", "guidelines"):
            if self.degenerate[stage]:
                said.append(f"{stage} {self.degenerate[stage]} of {self.queries} queries")
        if said:
            said[-1] += " (generic rubric used)"
        if self.degenerate["reasoning"]:
            said.append(f"reasoning {self.degenerate['reasoning']} of {self.pairs} judgments (stored as none)")
        return "degenerate outputs: " + ", ".join(said)

    @property
    def stopped_by_budget(self) -> bool:
        return self.over_budget or (self.budget is not None and self.budget.stopped)

    @property
    def judged_nothing(self) -> bool:
        """Asked for pairs, it has a judgment (stored or new, parsed or not) of none of them: the command exits non-zero."""
        return self.pairs > 0 and self.judged + self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k not in ("spend", "budget")}
        budget = None if self.budget is None else {**vars(self.budget), "stopped": self.budget.stopped}
        return {**data, "budget": budget, "spend": {stage: vars(s) for stage, s in self.spend.items()}, "total_calls": self.total_calls}


def duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"

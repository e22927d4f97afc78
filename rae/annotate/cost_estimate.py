"""What a run would cost before it pays anything (``--dry-run``): calls, tokens and dollars, from the store's hit
rate; and the spending limit that ``--budget`` sets from that estimate.

The plan reads the store only. A query whose guidelines are stored costs nothing for requirements and guidelines;
a pair whose judgment is stored costs nothing. Every other step is one call. Tokens per call come from this model's
own stored calls of that stage when there are enough of them (the best predictor of the next call), else from the
length of the prompt text (four characters a token) plus a typical output; the price is the model's.
"""

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from rae.annotate.spending import SpendingLimit
from rae.annotate.steps import StoredSteps
from rae.config import ConfigError
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair
from rae.programs.product_text import product_text
from rae.store.schema import GuidelinesRow, JudgmentRow, LMCall, RequirementsRow

MIN_HISTORY = 20
CHARS_PER_TOKEN = 4
PROMPT_OVERHEAD_CHARS = 1500  # DSPy's system prompt and field markers, measured on the judge's prompt
TYPICAL_OUTPUT_TOKENS = {"requirements": 80, "guidelines": 150, "judgment": 60}
TYPICAL_GUIDELINES_CHARS = 600


@dataclass(frozen=True)
class StageEstimate:
    calls: int
    input_tokens: int
    output_tokens: int
    from_history: bool


@dataclass(frozen=True)
class CostEstimate:
    pairs: int
    judgments_stored: int
    queries: int
    guidelines_stored: int
    stages: dict[str, StageEstimate]
    cost_usd: float | None

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.stages.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "calls": self.calls}

    def line(self) -> str:
        cost = "unknown cost (no price for this model: add it under [prices])" if self.cost_usd is None else f"about ${self.cost_usd:.4f}"
        tokens = sum(s.input_tokens + s.output_tokens for s in self.stages.values())
        return (
            f"dry run: {self.pairs} pairs, {self.judgments_stored} already judged in the store; {self.queries} queries, "
            f"{self.guidelines_stored} with stored guidelines; would make {self.calls} LM calls "
            f"({self.stages['judgment'].calls} judgments), about {tokens:,} tokens, {cost}"
        )


def estimate_cost(steps: StoredSteps, pairs: list[Pair], catalog: Catalog) -> CostEstimate:
    reader = steps.lookup_only()
    queries = list(dict.fromkeys(p.query for p in pairs))
    guidelines = {q: reader.guidelines(q) for q in queries}
    missing_queries = [q for q in queries if not guidelines[q].ok]
    missing_requirements = [q for q in missing_queries if steps.annotator.writes_guidelines and not reader.requirements(q).ok]
    stored = 0
    judgment_chars = []
    for pair in pairs:
        text = product_text(catalog[pair.product_id], steps.text_spec)
        if guidelines[pair.query].ok and reader.judgment(pair, guidelines[pair.query].value, catalog[pair.product_id]).ok:
            stored += 1
            continue
        rendered = guidelines[pair.query].value.render() if guidelines[pair.query].ok else "x" * TYPICAL_GUIDELINES_CHARS
        judgment_chars.append(len(pair.query) + len(rendered) + len(text))
    stages = {
        "requirements": _stage(steps, RequirementsRow, "requirements", [len(q) for q in missing_requirements]),
        "guidelines": _stage(steps, GuidelinesRow, "guidelines", [len(q) + 300 for q in missing_queries] if steps.annotator.writes_guidelines else []),
        "judgment": _stage(steps, JudgmentRow, "judgment", judgment_chars),
    }
    costs = [steps.model.cost(s.input_tokens, s.output_tokens) if s.calls else 0.0 for s in stages.values()]
    return CostEstimate(
        pairs=len(pairs),
        judgments_stored=stored,
        queries=len(queries),
        guidelines_stored=len(queries) - len(missing_queries),
        stages=stages,
        cost_usd=None if any(c is None for c in costs) else round(sum(costs), 6),
    )


def spending_limit(steps: StoredSteps, pairs: list[Pair], catalog: Catalog, budget_usd: float) -> SpendingLimit:
    """A limit of ``budget_usd`` for judging ``pairs``, expecting each call to cost what this estimate says."""
    estimate = estimate_cost(steps, pairs, catalog)
    if estimate.cost_usd is None:
        name = steps.model.spec.name
        raise ConfigError(f'--budget needs a price for {name}: LiteLLM has none; add [prices."{name}"] to the config')
    return SpendingLimit(budget_usd, estimate.cost_usd / estimate.calls if estimate.calls else 0.0)


def _stage(steps: StoredSteps, table: type[LMCall], stage: str, input_chars: list[int]) -> StageEstimate:
    calls = len(input_chars)
    if calls == 0:
        return StageEstimate(0, 0, 0, False)
    with steps.store.session() as session:
        count, mean_in, mean_out = session.execute(
            select(func.count(), func.avg(table.input_tokens), func.avg(table.output_tokens)).where(
                table.model_id == steps.model.identity, table.program_hash == steps.hashes[stage], table.status == "ok"
            )
        ).one()
    if count >= MIN_HISTORY and mean_in is not None:
        return StageEstimate(calls, round(calls * mean_in), round(calls * (mean_out or 0)), True)
    input_tokens = sum((chars + PROMPT_OVERHEAD_CHARS) // CHARS_PER_TOKEN for chars in input_chars)
    return StageEstimate(calls, input_tokens, calls * TYPICAL_OUTPUT_TOKENS[stage], False)

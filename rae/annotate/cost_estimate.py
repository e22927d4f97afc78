"""What a run would cost before it pays anything (``--dry-run``): calls, tokens and dollars, from the store's hit
rate.

The plan reads the store only: it replays the program over the stored answers, as ``rae agreement`` does. A query
whose guidelines are stored costs nothing for requirements and guidelines; a pair whose judgment is stored costs
nothing. Every other step is one call. Tokens per call come from this model's own stored answers of that stage when
there are enough of them (the best predictor of the next call), else from the length of the prompt text (four
characters a token) plus a typical output; the price is the model's.
"""

from dataclasses import asdict, dataclass
from typing import Any

from dspy.utils.exceptions import LMError

from rae.annotate.judging import Judging, run_to_completion
from rae.annotate.run import AnnotationRun
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair
from rae.lm.pricing import total_cost
from rae.programs.product_text import product_text
from rae.store.records import answer_tokens

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


def estimate_cost(judging: Judging, pairs: list[Pair], catalog: Catalog) -> CostEstimate:
    lookup = judging.lookup()
    run = AnnotationRun(lookup, catalog, progress=False)
    run.run([p for p in dict.fromkeys(pairs) if p.product_id in catalog])
    queries = list(dict.fromkeys(p.query for p in pairs))
    missing_queries = [q for q in queries if not (run.guidelines.get(q) and run.guidelines[q].ok)]
    writes = lookup.program.writes_guidelines
    missing_requirements = [q for q in missing_queries if writes and not _requirements_stored(lookup, q)]
    stored = 0
    judgment_chars = []
    for pair in pairs:
        outcome = run.outcomes.get(pair)
        if outcome is not None and outcome.status in ("ok", "failed"):
            stored += 1
            continue
        made = run.guidelines.get(pair.query)
        rendered = made.value.guidelines.render() if made is not None and made.ok else "x" * TYPICAL_GUIDELINES_CHARS
        judgment_chars.append(len(pair.query) + len(rendered) + len(product_text(catalog[pair.product_id], judging.text_spec)))
    model = judging.model
    stages = {
        "requirements": _stage(judging, "requirements", [len(q) for q in missing_requirements]),
        "guidelines": _stage(judging, "guidelines", [len(q) + 300 for q in missing_queries] if writes else []),
        "judgment": _stage(judging, "judgment", judgment_chars),
    }
    costs = [model.cost(s.input_tokens, s.output_tokens) if s.calls else 0.0 for s in stages.values()]
    return CostEstimate(
        pairs=len(pairs),
        judgments_stored=stored,
        queries=len(queries),
        guidelines_stored=len(queries) - len(missing_queries),
        stages=stages,
        cost_usd=total_cost(costs),
    )


def _requirements_stored(lookup: Judging, query: str) -> bool:
    """Whether the query's requirements are in the store (whatever they came to)."""
    async def looked_up() -> bool:
        with lookup.context():
            try:
                return (await lookup.requirements(query)).status != "missing"
            except LMError:
                return False

    return run_to_completion(looked_up())


def _stage(judging: Judging, stage: str, input_chars: list[int]) -> StageEstimate:
    calls = len(input_chars)
    if calls == 0:
        return StageEstimate(0, 0, 0, False)
    count, mean_in, mean_out = answer_tokens(judging.store, judging.model.identity, stage)
    if count >= MIN_HISTORY and mean_in is not None:
        return StageEstimate(calls, round(calls * mean_in), round(calls * (mean_out or 0)), True)
    input_tokens = sum((chars + PROMPT_OVERHEAD_CHARS) // CHARS_PER_TOKEN for chars in input_chars)
    return StageEstimate(calls, input_tokens, calls * TYPICAL_OUTPUT_TOKENS[stage], False)

"""The program bound to one store and one model for a command: each of its steps run, its calls logged, its result
turned into a value and a record.

This is where rae runs the program: a query's requirements (``program.requirements``) and guidelines
(``program.guidelines_for``), and each pair's judgment (``program`` itself: its ``aforward``, or the ``forward`` of a
subclass that overrides only that one, in a thread). Every LM call goes through the store (``rae.annotate.stored_lm``).
With ``allow_calls=False`` the same steps only read the store: that is how ``rae agreement``, ``rae evaluate`` and
every report read the judgments of the current program and model, by replaying the program over the stored answers,
so what they read is exactly what the program says now.
"""

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import dspy

from rae.annotate.call_gate import CallGate
from rae.annotate.executor import CacheThrough, OverBudget, run_to_completion
from rae.annotate.outcome import (
    Provenance,
    StepOutcome,
    guidelines_outcome,
    guidelines_record,
    judgment_outcome,
    requirements_outcome,
)
from rae.annotate.stored_lm import NotStored, StoredCalls, stored_lm
from rae.config import ConfigError, ProductTextSpec
from rae.datasets.records import Pair, Product
from rae.lm.calls import Call, call_log
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator, QueryGuidelines
from rae.programs.fingerprint import program_fingerprint
from rae.programs.product_text import product_text
from rae.store.images import ImageCache
from rae.store.schema import JudgmentRow, RequirementsRow

__all__ = ["Judging", "run_to_completion"]


class Judging:
    def __init__(
        self,
        program: Annotator,
        executor: CacheThrough,
        model: ModelHandle,
        sender: Any,
        text_spec: ProductTextSpec = ProductTextSpec(),
        run_id: str | None = None,
        allow_calls: bool = True,
        images: ImageCache | None = None,
        describer: tuple[ModelHandle, Any] | None = None,
        confidence: str = "none",
        budget_id: str | None = None,
    ):
        self.program, self.executor, self.model, self.sender = program, executor, model, sender
        self.text_spec, self.run_id, self.allow_calls, self.images, self.confidence = text_spec, run_id, allow_calls, images, confidence
        self.describer, self.budget_id = describer, budget_id
        self.calls = StoredCalls(executor, model, sender, run_id, allow_calls, gate_for(model, budget_id))
        self.lm = stored_lm(self.calls)
        if describer is not None:  # another model writes the image descriptions: the describer's predictor calls it
            self.program = program.deepcopy()
            calls = StoredCalls(executor, describer[0], describer[1], run_id, allow_calls, gate_for(describer[0], budget_id))
            self.program.describer.set_lm(stored_lm(calls))
        self.made = Provenance(program_fingerprint(program), model.identity, run_id)

    @property
    def store(self) -> Any:
        return self.executor.store

    def lookup(self) -> "Judging":
        """The same program and model, reading the store only: no call is made, and no record kept."""
        return Judging(self.program, self.executor, self.model, self.sender, self.text_spec, self.run_id, False, self.images, self.describer,
                       self.confidence)

    def within(self, budget_id: str | None) -> "Judging":
        """The same program and model, every call it pays for reserved against the budget ``budget_id`` (its ledger in
        the store, shared by every process and node of the run)."""
        return Judging(self.program, self.executor, self.model, self.sender, self.text_spec, self.run_id, self.allow_calls, self.images,
                       self.describer, self.confidence, budget_id)

    def context(self, history: bool = False) -> AbstractContextManager:
        """DSPy's settings for the program's calls: this model and its adapter; and no per-call history (the store keeps
        every call) unless ``history`` (an optimizer may read it)."""
        return dspy.context(lm=self.lm, adapter=self.model.adapter(), disable_history=not history)

    async def requirements(self, query: str) -> StepOutcome[RequirementsRow]:
        with step_calls("requirements") as calls:
            prediction = await self.program.requirements.acall(query=query)
        outcome = requirements_outcome(query, prediction, calls, self.made)
        self._keep(outcome.value)
        return outcome

    async def guidelines(self, query: str, requirement_keys: frozenset[str] = frozenset()) -> StepOutcome[QueryGuidelines]:
        """The guidelines the judge reads for the query (``requirement_keys``: the calls of its requirements step, made
        before, which are not the guideline writer's)."""
        with step_calls("guidelines") as calls:
            if _overrides_only(self.program, "guidelines_for"):
                made_for = await asyncio.to_thread(self.program.guidelines_for, query)
            else:
                made_for = await self.program.aguidelines_for(query)
        outcome = guidelines_outcome(query, made_for, calls, self.made)
        self._keep(guidelines_record(query, made_for, [c for c in calls if c.key not in requirement_keys], self.made))
        return outcome

    async def judgment(self, pair: Pair, guidelines: QueryGuidelines, product: Product) -> StepOutcome[JudgmentRow]:
        """The judgment of one pair. The program reads the listing (the product text the settings choose) and, when its
        judge mode asks for it, the product's image."""
        image = await self._image(product)
        inputs = {"query": pair.query, "product": product_text(product, self.text_spec), "guidelines": guidelines, "image": image}
        with step_calls("judgment") as calls:
            if _overrides_only(self.program, "forward"):
                prediction = await asyncio.to_thread(self.program, **inputs)
            else:
                prediction = await self.program.acall(**inputs)
        outcome = judgment_outcome(pair, product, prediction, calls, self.made, self.confidence)
        self._keep(outcome.value)
        return outcome

    def query_guidelines(self, query: str) -> StepOutcome[QueryGuidelines]:
        """A query's guidelines, outside a run (the review page, the Python API): through the store, paid if missing
        (``missing`` when this judging only reads the store and they are not there)."""
        async def both() -> StepOutcome[QueryGuidelines]:
            with self.context():
                done = frozenset()
                if self.program.writes_guidelines and self.allow_calls:
                    done = frozenset(c.key for c in (await self.requirements(query)).calls)
                return await self.guidelines(query, done)

        try:
            return run_to_completion(both())
        except NotStored:
            return StepOutcome(None, "missing")
        finally:
            self.flush()

    def flush(self) -> None:
        """Wait until every record asked for is stored."""
        self.executor.flush()

    async def _image(self, product: Product) -> dspy.Image | None:
        if self.program.judge_mode == "text" or self.images is None or not product.image:
            return None
        fetched = await asyncio.to_thread(self.images.image, product.image)
        return dspy.Image(fetched.data_uri()) if fetched.ok else None

    def _keep(self, record: Any) -> None:
        if record is not None and self.allow_calls:
            self.executor.gateway.record(record)


def _overrides_only(program: Annotator, method: str) -> bool:
    """Whether the program's class overrides the sync ``method`` but not its async twin: then the sync one is what it
    means, and it runs in a thread (a subclass's own ``forward`` is always the one called)."""
    kind, twin = type(program), "a" + method
    return getattr(kind, method) is not getattr(Annotator, method) and getattr(kind, twin) is getattr(Annotator, twin)


@contextmanager
def step_calls(stage: str) -> Iterator[list[Call]]:
    """The calls of one step; when the budget refuses one, the refusal carries those the step had made (paid for)."""
    with call_log(stage) as calls:
        try:
            yield calls
        except OverBudget as refused:
            refused.calls = list(calls)
            raise


def gate_for(model: ModelHandle, budget_id: str | None) -> CallGate | None:
    """The gate of a model's calls under a budget: its price (known: a budget refuses a model without one at the start,
    ``rae.annotate.spending``) and its max_tokens; none without a budget, and none for a free model."""
    if budget_id is None:
        return None
    if model.price is None:
        raise ConfigError(f'a budget needs a price for {model.spec.name}: LiteLLM has none; add [prices."{model.spec.name}"] to the config')
    return CallGate(budget_id, model.price, model.spec.max_tokens)

"""The program's steps, each through the store: requirements, guidelines, image descriptions, judgments.

Each step computes its key (stage, program hash, model identity, the exact input), asks the executor for the row
(a hit, or one paid call), and turns the row into a value. A parse failure is stored too, with the raw text: it was
paid for. With ``allow_calls=False`` the same code only looks up, which is how ``rae agreement`` and
``rae evaluate`` read the judgments of the current program and model, and how a dry run counts what a run would cost.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import dspy

from rae.annotate.confidence import confidence_columns, key_part, sampled_judgment
from rae.annotate.executor import CacheThrough, Paid, Through
from rae.annotate.spending import Spend
from rae.annotate.visual import Visual, visual_for
from rae.config import ProductTextSpec
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair, Product
from rae.lm.factory import ModelHandle
from rae.lm.recorder import CallRecord, recorded_call
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES, Guidelines, guidelines_from
from rae.programs.hostile_text import suspicious_instructions
from rae.programs.product_text import product_text, seller_text
from rae.programs.requirements import Requirement
from rae.secrets import redact
from rae.store.images import FetchedImage, ImageCache
from rae.store.keys import StoreKey, key_for
from rae.store.schema import DescriptionRow, GuidelinesRow, JudgmentRow, LMCall, RequirementsRow
from rae.store.store import Store

T = TypeVar("T")
Row = TypeVar("Row", bound=LMCall)


@dataclass
class StepOutcome(Generic[T]):
    """A step's result: ``ok`` with a value, ``failed`` (stored unparseable output) or ``missing`` (not stored, no call)."""

    value: T | None
    status: str
    cached: bool = False
    spend: Spend = field(default_factory=Spend)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class StoredSteps:
    def __init__(
        self,
        annotator: Annotator,
        executor: CacheThrough,
        model: ModelHandle,
        text_spec: ProductTextSpec = ProductTextSpec(),
        run_id: str | None = None,
        allow_calls: bool = True,
        retry_failed: bool = False,
        images: ImageCache | None = None,
        describer: ModelHandle | None = None,
        confidence: str = "none",
        confidence_samples: int = 5,
    ):
        self.annotator = annotator
        self.executor = executor
        self.model = model
        self.text_spec = text_spec
        self.run_id = run_id
        self.allow_calls = allow_calls
        self.retry_failed = retry_failed
        self.images = images
        self.describer = describer or model
        self.confidence = confidence
        self.confidence_samples = confidence_samples
        self.hashes = annotator.stage_hashes()

    @property
    def store(self) -> Store:
        return self.executor.store

    def lookup_only(self) -> "StoredSteps":
        """The same steps, reading the store without ever calling the LM."""
        reader = copy.copy(self)
        reader.allow_calls, reader.retry_failed = False, False
        return reader

    def stored_judgments(self, pairs: list[Pair], catalog: Catalog) -> dict[Pair, StepOutcome[JudgmentRow]]:
        """What the store holds for each pair under this program and model; ``missing`` where it holds nothing."""
        reader = self.lookup_only()
        guidelines = {query: reader.guidelines(query) for query in dict.fromkeys(p.query for p in pairs)}
        return {
            pair: reader.judgment(pair, guidelines[pair.query].value, catalog[pair.product_id])
            if guidelines[pair.query].ok
            else StepOutcome(None, "missing")
            for pair in pairs
        }

    def requirements(self, query: str) -> StepOutcome[list[Requirement]]:
        through = self.stored_call(
            RequirementsRow,
            self._key("requirements", {"query": query}),
            lambda: recorded_call(self.annotator.requirements, self.model.call_policy, query=query),
            lambda record: RequirementsRow(
                query=query,
                requirements=[r.model_dump() for r in record.prediction.requirements] if record.ok else None,
            ),
        )
        row = through.row
        value = [Requirement.model_validate(r) for r in row.requirements] if _ok(row) else None
        return StepOutcome(value, _status(row), through.cached, through.spend)

    def guidelines(self, query: str) -> StepOutcome[Guidelines]:
        """The query's guidelines: written from its requirements, or the generic rubric when the program uses it."""
        if not self.annotator.writes_guidelines:
            return StepOutcome(GENERIC_GUIDELINES, "ok", cached=True)
        requirements = self.requirements(query)
        if not requirements.ok:
            return StepOutcome(None, requirements.status, requirements.cached, requirements.spend)
        stated = requirements.value
        through = self.stored_call(
            GuidelinesRow,
            self._key("guidelines", {"query": query, "requirements": [r.model_dump() for r in stated]}),
            lambda: recorded_call(self.annotator.guidelines, self.model.call_policy, query=query, requirements=stated),
            lambda record: GuidelinesRow(query=query, guidelines=vars(guidelines_from(record.prediction)) if record.ok else None),
        )
        row = through.row
        value = Guidelines(**row.guidelines) if _ok(row) else None
        return StepOutcome(value, _status(row), through.cached and requirements.cached, through.spend + requirements.spend)

    def judgment(self, pair: Pair, guidelines: Guidelines, product: Product) -> StepOutcome[JudgmentRow]:
        """The judgment of one pair. Its key is what the judge reads, not the ids: the same query and product text
        under another id (another engine, another log) is the same work and is not paid again. What the judge saw of
        the image (nothing, a description, the image) is part of that and is recorded with the judgment."""
        visual = visual_for(product, self.annotator.judge_mode, self.images, self._described)
        text = product_text(product, self.text_spec, visual_description=visual.description or "")
        rendered = guidelines.render()
        content = {"query": pair.query, "guidelines": rendered, "product": text}
        inputs = dict(content)
        stage, judge = "judgment", self.annotator.judge
        if visual.image is not None:
            content["image"] = visual.image.content_hash
            inputs["image"] = dspy.Image(visual.image.data_uri())
            stage, judge = "image_judgment", self.annotator.image_judge
        confidence = key_part(self.confidence, self.confidence_samples)
        if confidence is not None:  # how sureness is measured is part of what is stored, so part of the key
            content["confidence"] = confidence
        through = self.stored_call(
            JudgmentRow,
            self._key(stage, content),
            lambda: self._judged(judge, inputs),
            lambda record: self._judgment_row(pair, product, visual, record),
        )
        return StepOutcome(through.row, _status(through.row), through.cached, through.spend + visual.spend)

    def description(self, image: FetchedImage) -> StepOutcome[str]:
        """The visual description of one image, by the describer model, once per image content (whichever product)."""
        key = key_for("description", self.hashes["description"], self.describer.identity, {"image": image.content_hash})

        def call() -> CallRecord:
            with dspy.context(lm=self.describer.lm):
                return recorded_call(self.annotator.describer, self.describer.call_policy, image=dspy.Image(image.data_uri()))

        through = self.stored_call(
            DescriptionRow,
            key,
            call,
            lambda record: DescriptionRow(image_hash=image.content_hash, description=record.prediction.description if record.ok else None),
            model=self.describer,
        )
        row = through.row
        return StepOutcome(row.description if _ok(row) else None, _status(row), through.cached, through.spend)

    def stored_call(
        self,
        table: type[Row],
        key: StoreKey,
        call: Callable[[], CallRecord],
        output_row: Callable[[CallRecord], Row],
        model: ModelHandle | None = None,
    ) -> Through[Row]:
        """A step's row through the store: a hit, nothing (lookup only), or ``call`` paid once and its row stored."""
        if not self.allow_calls:
            return Through(self.executor.lookup(table, key.fingerprint), cached=True)
        paying = model or self.model

        def pay() -> Paid[Row]:
            record = call()
            return Paid(self._stored_row(output_row(record), key, record, paying), _spend(record, paying))

        return self.executor.through(table, key.fingerprint, pay, self.retry_failed)

    def _judged(self, judge: dspy.Module, inputs: dict) -> CallRecord:
        if self.confidence == "samples":
            return sampled_judgment(judge, self.model.call_policy, inputs, self.confidence_samples)
        return recorded_call(judge, self.model.call_policy, **inputs)

    def _judgment_row(self, pair: Pair, product: Product, visual: Visual, record: CallRecord) -> JudgmentRow:
        return JudgmentRow(
            query_id=pair.query_id,
            query=pair.query,
            product_id=pair.product_id,
            label=str(record.prediction.label) if record.ok else None,
            reasoning=getattr(record.prediction, "reasoning", None) if record.ok else None,
            visual=visual.kind,
            flags=",".join(suspicious_instructions(seller_text(product))),
            **confidence_columns(record, self.confidence),
        )

    def _described(self, image: FetchedImage) -> tuple[str | None, Spend]:
        described = self.description(image)
        return (described.value if described.ok else None), described.spend

    def _key(self, stage: str, content: dict) -> StoreKey:
        return key_for(stage, self.hashes[stage], self.model.identity, content)

    def _stored_row(self, row: Row, key: StoreKey, record: CallRecord, model: ModelHandle) -> Row:
        """The row as stored: its key, what the call cost, and what the model wrote (keys redacted out of it)."""
        row.fingerprint, row.program_hash, row.model_id, row.input_hash = key.fingerprint, key.program_hash, key.model_id, key.input_hash
        row.status, row.error, row.attempts = record.status, record.error, record.attempts
        row.raw_output = redact(record.raw_output) if record.raw_output is not None else None
        row.input_tokens, row.output_tokens, row.latency_s = record.input_tokens, record.output_tokens, record.latency_s
        row.cost_usd = model.cost(record.input_tokens, record.output_tokens)
        row.run_id = self.run_id
        return row


def _spend(record: CallRecord, model: ModelHandle) -> Spend:
    return Spend(
        record.lm_calls,
        record.input_tokens or 0,
        record.output_tokens or 0,
        model.cost(record.input_tokens, record.output_tokens),
        record.latency_s,
        record.retries,
    )


def _ok(row: LMCall | None) -> bool:
    return row is not None and row.status == "ok"


def _status(row: LMCall | None) -> str:
    return "missing" if row is None else row.status

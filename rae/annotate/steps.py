"""The program's steps, each through the store: requirements, guidelines, image descriptions, judgments.

Each step computes its key (stage, program hash, model identity, the exact input), asks the executor for the row
(a hit, or one paid call), and turns the row into a value. A parse failure is stored too, with the raw text: it was
paid for. So is an output that parsed but says nothing (``rae.programs.validators``), after the attempts to get
content (``rae.annotate.refine``): with the status ``degenerate`` and the reason, never as ``ok``. A query whose
requirements or guidelines are degenerate is judged with the generic rubric, and each judgment records which
guidelines it read; a degenerate reasoning is stored as none, and the judgment flagged ``no_reasoning``.

With ``allow_calls=False`` the same code only looks up, which is how ``rae agreement`` and ``rae evaluate`` read the
judgments of the current program and model, and how a dry run counts what a run would cost.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import dspy

from rae.annotate.confidence import confidence_columns, key_part, with_samples
from rae.annotate.executor import CacheThrough, Paid, Through
from rae.annotate.refine import Check, Validation, call_until_content
from rae.annotate.spending import Spend
from rae.annotate.visual import Visual, visual_for
from rae.config import ProductTextSpec
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair, Product
from rae.lm.batched import CURRENT_KEY
from rae.lm.factory import ModelHandle
from rae.lm.recorder import CallRecord, recorded_call
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES, Guidelines, guidelines_from
from rae.programs.hostile_text import suspicious_instructions
from rae.programs.product_text import product_text, seller_text
from rae.programs.requirements import Requirement
from rae.programs.validators import guidelines_problem, prompt_sentences, reasoning_problem, requirements_problem, text_problem
from rae.secrets import redact
from rae.store.images import FetchedImage, ImageCache
from rae.store.keys import StoreKey, key_for
from rae.store.schema import DescriptionRow, GuidelinesRow, JudgmentRow, LMCall, RequirementsRow
from rae.store.store import Store

T = TypeVar("T")
Row = TypeVar("Row", bound=LMCall)
NO_REASONING = "no_reasoning"


@dataclass
class StepOutcome(Generic[T]):
    """A step's result: ``ok`` with a value, ``failed`` (stored unparseable output), ``degenerate`` (stored output that
    says nothing) or ``missing`` (not stored, no call). ``degenerate`` names the stage and reason when this step, or
    one it built on, was degenerate (guidelines then fall back to the generic rubric, and stay ``ok``)."""

    value: T | None
    status: str
    cached: bool = False
    spend: Spend = field(default_factory=Spend)
    degenerate: "Degenerate | None" = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Degenerate:
    """A stage whose stored output says nothing, and why."""

    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.reason}"


@dataclass
class Answer:
    """A paid call's record, and what the output checks found (None: no check ran, or the output did not parse)."""

    record: CallRecord
    validation: Validation | None = None


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
        refine_attempts: int = 3,
        refine_temperature: float = 0.3,
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
        self.refine_attempts = refine_attempts
        self.refine_temperature = refine_temperature
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
        extractor = self.annotator.requirements
        through = self.stored_call(
            RequirementsRow,
            self._key("requirements", {"query": query}),
            lambda: self._checked(extractor, {"query": query}, lambda p, hints: requirements_problem(query, p.requirements, hints)),
            lambda answer: _with_status(
                RequirementsRow(query=query, requirements=[r.model_dump() for r in answer.record.prediction.requirements] if answer.record.ok else None),
                answer,
            ),
        )
        row = through.row
        value = [Requirement.model_validate(r) for r in row.requirements] if _ok(row) else None
        return StepOutcome(value, _status(row), through.cached, through.spend, _why(row, "requirements"))

    def guidelines(self, query: str) -> StepOutcome[Guidelines]:
        """The guidelines the judge reads for the query: written from its requirements, or the generic rubric when the
        program uses it, or when the query's requirements or guidelines were degenerate."""
        if not self.annotator.writes_guidelines:
            return StepOutcome(GENERIC_GUIDELINES, "ok", cached=True)
        requirements = self.requirements(query)
        if requirements.status == "degenerate":
            return StepOutcome(GENERIC_GUIDELINES, "ok", requirements.cached, requirements.spend, requirements.degenerate)
        if not requirements.ok:
            return StepOutcome(None, requirements.status, requirements.cached, requirements.spend)
        stated, writer = requirements.value, self.annotator.guidelines
        sentences = prompt_sentences(writer.write.signature)
        through = self.stored_call(
            GuidelinesRow,
            self._key("guidelines", {"query": query, "requirements": [r.model_dump() for r in stated]}),
            lambda: self._checked(
                writer,
                {"query": query, "requirements": stated},
                lambda p, hints: guidelines_problem(query, guidelines_from(p).by_label(), [*sentences, *hints]),
            ),
            lambda answer: _with_status(
                GuidelinesRow(query=query, guidelines=guidelines_from(answer.record.prediction).by_label() if answer.record.ok else None), answer
            ),
        )
        row, cached, spend = through.row, through.cached and requirements.cached, through.spend + requirements.spend
        if row is not None and row.status == "degenerate":
            return StepOutcome(GENERIC_GUIDELINES, "ok", cached, spend, _why(row, "guidelines"))
        return StepOutcome(Guidelines(**row.guidelines) if _ok(row) else None, _status(row), cached, spend)

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
            lambda answer: self._judgment_row(pair, product, visual, guidelines, answer),
        )
        return StepOutcome(through.row, _status(through.row), through.cached, through.spend + visual.spend)

    def description(self, image: FetchedImage) -> StepOutcome[str]:
        """The visual description of one image, by the describer model, once per image content (whichever product)."""
        key = key_for("description", self.hashes["description"], self.describer.identity, {"image": image.content_hash})

        def call() -> Answer:
            with dspy.context(lm=self.describer.lm, adapter=self.describer.adapter()):
                inputs = {"image": dspy.Image(image.data_uri())}
                return self._checked(self.annotator.describer, inputs, lambda p, hints: text_problem(p.description, prompt=hints), self.describer)

        through = self.stored_call(
            DescriptionRow,
            key,
            call,
            lambda answer: _with_status(
                DescriptionRow(image_hash=image.content_hash, description=answer.record.prediction.description if answer.record.ok else None),
                answer,
            ),
            model=self.describer,
        )
        row = through.row
        return StepOutcome(row.description if _ok(row) else None, _status(row), through.cached, through.spend)

    def stored_call(
        self,
        table: type[Row],
        key: StoreKey,
        call: Callable[[], Answer],
        output_row: Callable[[Answer], Row],
        model: ModelHandle | None = None,
    ) -> Through[Row]:
        """A step's row through the store: a hit, nothing (lookup only), or ``call`` paid once and its row stored."""
        if not self.allow_calls:
            return Through(self.executor.lookup(table, key.fingerprint), cached=True)
        paying = model or self.model

        def pay() -> Paid[Row]:
            token = CURRENT_KEY.set(key.fingerprint)  # which step is calling, for a batch's engines (rae.lm.batched)
            try:
                answer = call()
            finally:
                CURRENT_KEY.reset(token)
            return Paid(self._stored_row(output_row(answer), key, answer, paying), _spend(answer.record, paying))

        return self.executor.through(table, key.fingerprint, pay, self.retry_failed)

    def _checked(self, module: dspy.Module, inputs: dict, check: Check, model: ModelHandle | None = None) -> Answer:
        """The call, tried again while its output is degenerate (``refine_attempts`` in all)."""
        policy = (model or self.model).call_policy
        return Answer(*call_until_content(module, policy, inputs, check, self.refine_attempts, self.refine_temperature))

    def _judged(self, judge: dspy.Module, inputs: dict) -> Answer:
        """A judgment; with chain of thought, its reasoning is checked (and the judgment tried again while it says nothing)."""
        if self.annotator.judge.chain_of_thought:
            # Not the judge's own words: a placeholder, or its prompt copied back (instructions, guidelines, listing).
            shown = [*prompt_sentences(judge.judge.predict.signature), inputs["guidelines"], inputs["product"]]
            answer = self._checked(judge, inputs, lambda p, hints: reasoning_problem(inputs["query"], p.reasoning, [*shown, *hints]))
        else:
            answer = Answer(recorded_call(judge, self.model.call_policy, **inputs))
        if self.confidence == "samples":
            answer.record = with_samples(answer.record, judge, self.model.call_policy, inputs, self.confidence_samples)
        return answer

    def _judgment_row(self, pair: Pair, product: Product, visual: Visual, guidelines: Guidelines, answer: Answer) -> JudgmentRow:
        record, validation = answer.record, answer.validation
        flags = suspicious_instructions(seller_text(product))
        reasoning = getattr(record.prediction, "reasoning", None) if record.ok else None
        if validation is not None and validation.final is not None:  # the reasoning says nothing: not stored as if it did
            reasoning, flags = None, [*flags, NO_REASONING]
        return JudgmentRow(
            query_id=pair.query_id,
            query=pair.query,
            product_id=pair.product_id,
            label=str(record.prediction.label) if record.ok else None,
            reasoning=reasoning,
            visual=visual.kind,
            guidelines_source="query" if guidelines.written_for_the_query else "generic",
            flags=",".join(flags),
            **confidence_columns(record, self.confidence),
        )

    def _described(self, image: FetchedImage) -> tuple[str | None, Spend]:
        described = self.description(image)
        return (described.value if described.ok else None), described.spend

    def _key(self, stage: str, content: dict) -> StoreKey:
        return key_for(stage, self.hashes[stage], self.model.identity, content)

    def _stored_row(self, row: Row, key: StoreKey, answer: Answer, model: ModelHandle) -> Row:
        """The row as stored: its key, what the call cost, and what the model wrote (keys redacted out of it)."""
        record = answer.record
        row.fingerprint, row.program_hash, row.model_id, row.input_hash = key.fingerprint, key.program_hash, key.model_id, key.input_hash
        row.status = row.status or record.status
        row.error = row.error or record.error
        row.attempts = record.attempts
        row.validation = answer.validation.as_dict() if answer.validation is not None else None
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


def _with_status(row: Row, answer: Answer) -> Row:
    """A row of a stage whose output must be content: ``degenerate``, with the reason, when it is not."""
    if answer.validation is not None and answer.validation.final is not None:
        row.status, row.error = "degenerate", answer.validation.final
    return row


def _why(row: LMCall | None, stage: str) -> Degenerate | None:
    return Degenerate(stage, row.error or "") if row is not None and row.status == "degenerate" else None


def _ok(row: LMCall | None) -> bool:
    return row is not None and row.status == "ok"


def _status(row: LMCall | None) -> str:
    return "missing" if row is None else row.status

"""The program's steps, each through the store: compute the step's key, return the stored row on a hit, call the LM
only on a miss, and store what it answered (a parse failure included, with the raw text: it was paid for).

With ``allow_calls=False`` the same code only looks up, which is how ``rae agreement`` and ``rae evaluate`` read the
judgments of the current program and model, and how a dry run counts what a run would cost.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import dspy

from rae.config import ProductTextSpec
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair, Product
from rae.images.cache import FetchedImage, ImageCache
from rae.labels import Label
from rae.lm.factory import ModelHandle
from rae.lm.recorder import CallRecord, recorded_call
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES, Guidelines, guidelines_from
from rae.programs.hashing import program_hash
from rae.programs.hostile_text import suspicious_instructions
from rae.programs.product_text import product_text, seller_text
from rae.programs.requirements import Requirement
from rae.secrets import redact
from rae.store.keys import StoreKey, key_for
from rae.store.schema import DescriptionRow, ErrorCauseRow, GuidelinesRow, JudgmentRow, LMCall, RequirementsRow
from rae.store.store import Store

T = TypeVar("T")
CLAIM_LEASE_S = 600.0  # longer than any call with its retries; a dead holder on this host is seen at once
CLAIM_POLL_S = 0.2
SAMPLE_TEMPERATURE = 0.7
Row = TypeVar("Row", bound=LMCall)


@dataclass
class Spend:
    """What the LM calls behind a result cost: nothing when it came from the store. ``cost_usd`` None: price unknown."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0
    retries: int = 0

    def __add__(self, other: "Spend") -> "Spend":
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 8)
        return Spend(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            cost,
            round(self.seconds + other.seconds, 4),
            self.retries + other.retries,
        )


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

    @property
    def lm_calls(self) -> int:
        return self.spend.calls


@dataclass(frozen=True)
class PendingStep:
    """A step to pay for: its table and key, the call that makes it, and how its row is built from the call."""

    table: type[LMCall]
    key: StoreKey
    call: Callable[[], CallRecord]
    output_row: Callable[[CallRecord], LMCall]
    model: ModelHandle


@dataclass
class Visual:
    """What the judge sees of a product's image: ``none``, a ``description`` of it, or the ``image``; and what that cost."""

    kind: str
    description: str | None = None
    image: FetchedImage | None = None
    spend: Spend = field(default_factory=Spend)


class StoredSteps:
    def __init__(
        self,
        annotator: Annotator,
        store: Store,
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
        self.confidence = confidence
        self.confidence_samples = confidence_samples
        self.images = images
        self.describer = describer or model
        self.annotator = annotator
        self.store = store
        self.model = model
        self.text_spec = text_spec
        self.run_id = run_id
        self.allow_calls = allow_calls
        self.retry_failed = retry_failed
        self.policy = model.call_policy
        self._in_flight: dict[str, threading.Lock] = {}
        self._in_flight_lock = threading.Lock()
        self.hashes = {
            "requirements": program_hash(annotator.requirements),
            "guidelines": program_hash(annotator.guidelines),
            "judgment": program_hash(annotator.judge),
            "description": program_hash(annotator.describer),
        }
        if annotator.judge_mode == "image":
            self.hashes["image_judgment"] = program_hash(annotator.image_judge)

    def lookup_only(self) -> "StoredSteps":
        """The same steps, reading the store without ever calling the LM."""
        return StoredSteps(
            self.annotator,
            self.store,
            self.model,
            self.text_spec,
            self.run_id,
            allow_calls=False,
            images=self.images,
            describer=self.describer,
            confidence=self.confidence,
            confidence_samples=self.confidence_samples,
        )

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
        key = self._key("requirements", {"query": query})
        row, cached, spend = self._through_store(
            RequirementsRow,
            key,
            lambda: recorded_call(self.annotator.requirements, self.policy, query=query),
            lambda record: RequirementsRow(
                query=query,
                requirements=[r.model_dump() for r in record.prediction.requirements] if record.ok else None,
            ),
        )
        value = [Requirement.model_validate(r) for r in row.requirements] if row and row.status == "ok" else None
        return StepOutcome(value, _status(row), cached, spend)

    def guidelines(self, query: str) -> StepOutcome[Guidelines]:
        """The query's guidelines: written from its requirements, or the generic rubric when the program uses it."""
        if not self.annotator.writes_guidelines:
            return StepOutcome(GENERIC_GUIDELINES, "ok", cached=True)
        requirements = self.requirements(query)
        if not requirements.ok:
            return StepOutcome(None, requirements.status, requirements.cached, requirements.spend)
        key = self._key("guidelines", {"query": query, "requirements": [r.model_dump() for r in requirements.value]})
        row, cached, spend = self._through_store(
            GuidelinesRow,
            key,
            lambda: recorded_call(self.annotator.guidelines, self.policy, query=query, requirements=requirements.value),
            lambda record: GuidelinesRow(
                query=query,
                guidelines=vars(guidelines_from(record.prediction)) if record.ok else None,
            ),
        )
        value = Guidelines(**row.guidelines) if row and row.status == "ok" else None
        return StepOutcome(value, _status(row), cached and requirements.cached, spend + requirements.spend)

    def judgment(self, pair: Pair, guidelines: Guidelines, product: Product) -> StepOutcome[JudgmentRow]:
        """The judgment of one pair. Its key is what the judge reads, not the ids: the same query and product text
        under another id (another engine, another log) is the same work and is not paid again. What the judge saw of
        the image (nothing, a description, the image) is part of that and is recorded with the judgment."""
        visual = self._visual(product)
        image = visual.image
        text = product_text(product, self.text_spec, visual_description=visual.description or "")
        rendered = guidelines.render()
        content = {"query": pair.query, "guidelines": rendered, "product": text}
        inputs = {"query": pair.query, "guidelines": rendered, "product": text}
        if image is not None:
            content["image"] = image.content_hash
            inputs["image"] = dspy.Image(image.data_uri())
            stage, judge = "image_judgment", self.annotator.image_judge
        else:
            stage, judge = "judgment", self.annotator.judge
        if self.confidence != "none":  # how sureness is measured is part of what is stored, so part of the key
            content["confidence"] = self.confidence if self.confidence != "samples" else f"samples:{self.confidence_samples}"
        row, cached, spend = self._through_store(
            JudgmentRow,
            self._key(stage, content),
            lambda: self._judged(judge, inputs),
            lambda record: JudgmentRow(
                query_id=pair.query_id,
                query=pair.query,
                product_id=pair.product_id,
                label=str(record.prediction.label) if record.ok else None,
                reasoning=getattr(record.prediction, "reasoning", None) if record.ok else None,
                visual=visual.kind,
                flags=",".join(suspicious_instructions(seller_text(product))),
                **_confidence(record, self.confidence),
            ),
        )
        return StepOutcome(row, _status(row), cached, spend + visual.spend)

    def _judged(self, judge: dspy.Module, inputs: dict) -> CallRecord:
        """One judgment; with sampled confidence, ``confidence_samples - 1`` more at a higher temperature (each with its
        own seed), whose agreement with the first label is how sure the judge is. The first, greedy, label is kept."""
        record = recorded_call(judge, self.policy, **inputs)
        if self.confidence != "samples" or not record.ok:
            return record
        labels = [str(record.prediction.label)]
        for seed in range(1, self.confidence_samples):
            with dspy.context(lm=dspy.settings.lm.copy(temperature=SAMPLE_TEMPERATURE, seed=seed)):
                extra = recorded_call(judge, self.policy, **inputs)
            record = _merged(record, extra)
            if extra.ok:
                labels.append(str(extra.prediction.label))
        record.probabilities = {"label": {label: labels.count(label) / len(labels) for label in sorted(set(labels))}}
        return record

    def error_cause(
        self, analyst: dspy.Module, pair: Pair, product: Product, human: Label, judgment: JudgmentRow
    ) -> StepOutcome[ErrorCauseRow]:
        """Why the judge's label differs from the human's, named by ``analyst`` from the query's requirements."""
        requirements = self.requirements(pair.query)
        stated = requirements.value or []
        text = product_text(product, self.text_spec)
        inputs = {
            "query": pair.query,
            "requirements": stated,
            "product": text,
            "human_label": str(human),
            "judge_label": judgment.label,
            "judge_reasoning": judgment.reasoning or "",
        }
        content = {**inputs, "requirements": [r.model_dump() for r in stated]}
        row, cached, spend = self._through_store(
            ErrorCauseRow,
            key_for("error_cause", program_hash(analyst), self.model.identity, content),
            lambda: recorded_call(analyst, self.policy, **inputs),
            lambda record: ErrorCauseRow(
                query_id=pair.query_id,
                product_id=pair.product_id,
                human_label=str(human),
                judge_label=judgment.label,
                cause=str(record.prediction.cause) if record.ok else None,
                explanation=record.prediction.explanation if record.ok else None,
            ),
        )
        return StepOutcome(row, _status(row), cached, spend + requirements.spend)

    def description(self, image: FetchedImage) -> StepOutcome[str]:
        """The visual description of one image, by the describer model, once per image content (whichever product)."""
        key = key_for("description", self.hashes["description"], self.describer.identity, {"image": image.content_hash})

        def call() -> CallRecord:
            with dspy.context(lm=self.describer.lm):
                return recorded_call(self.annotator.describer, self.describer.call_policy, image=dspy.Image(image.data_uri()))

        row, cached, spend = self._through_store(
            DescriptionRow,
            key,
            call,
            lambda record: DescriptionRow(image_hash=image.content_hash, description=record.prediction.description if record.ok else None),
            model=self.describer,
        )
        return StepOutcome(row.description if row and row.status == "ok" else None, _status(row), cached, spend)

    def _visual(self, product: Product) -> "Visual":
        """What the judge sees of the product's image in this mode: nothing, a description of it, or the image."""
        mode = self.annotator.judge_mode
        if mode == "text" or self.images is None:
            return Visual("none")
        image = self.images.image(product.image)
        if not image.ok:
            return Visual("none")
        if mode == "image":
            return Visual("image", image=image)
        described = self.description(image)
        if not described.ok:
            return Visual("none", spend=described.spend)
        return Visual("description", description=described.value, spend=described.spend)

    def _key(self, stage: str, content: dict) -> StoreKey:
        return key_for(stage, self.hashes[stage], self.model.identity, content)

    def _through_store(
        self,
        table: type[Row],
        key: StoreKey,
        call: Callable[[], CallRecord],
        output_row: Callable[[CallRecord], Row],
        model: ModelHandle | None = None,
    ) -> tuple[Row | None, bool, Spend]:
        """(row, served from the store, what the calls cost). A stored failure is served too, unless ``retry_failed``.

        One call per key at a time: a worker that needs what another worker is computing (two products with one image,
        two ids with one text) waits for it and reads the store, instead of paying for it again; a worker of another
        process holding the store's claim on the key is waited for the same way."""
        row = self.store.get(table, key.fingerprint)
        if self._usable(row):
            return row, True, Spend()
        if not self.allow_calls:
            return None, False, Spend()
        step = PendingStep(table, key, call, output_row, model or self.model)
        with self._in_flight_lock:
            flight = self._in_flight.setdefault(key.fingerprint, threading.Lock())
        waited = not flight.acquire(blocking=False)
        if waited:
            flight.acquire()
        try:
            if waited:  # another worker of this process had it: it is probably stored now
                row = self.store.get(table, key.fingerprint)
                if self._usable(row):
                    return row, True, Spend()
            while not self.store.claim(key.fingerprint, CLAIM_LEASE_S):
                time.sleep(CLAIM_POLL_S)  # another process is paying for this key: wait for its result
                row = self.store.get(table, key.fingerprint)
                if self._usable(row):
                    return row, True, Spend()
            return self._call_and_store(step, row)
        finally:
            flight.release()
            with self._in_flight_lock:
                self._in_flight.pop(key.fingerprint, None)

    def _usable(self, row: LMCall | None) -> bool:
        """A stored row serves the step: a success, or a failure when failures are not to be retried."""
        return row is not None and not (row.status == "failed" and self.retry_failed)

    def _call_and_store(self, step: "PendingStep", row: Row | None) -> tuple[Row | None, bool, Spend]:
        """Pay for the step (this process holds the claim) and store the result; the claim ends with the store."""
        key = step.key
        try:
            retrying = row is not None
            record = step.call()
            row = step.output_row(record)
            row.fingerprint, row.program_hash, row.model_id, row.input_hash = (
                key.fingerprint,
                key.program_hash,
                key.model_id,
                key.input_hash,
            )
            raw = redact(record.raw_output) if record.raw_output is not None else None  # keys stay out of the store
            row.status, row.error, row.raw_output, row.attempts = record.status, record.error, raw, record.attempts
            row.input_tokens, row.output_tokens, row.latency_s = record.input_tokens, record.output_tokens, record.latency_s
            row.cost_usd = step.model.cost(record.input_tokens, record.output_tokens)
            row.run_id = self.run_id
            if retrying:
                self.store.replace(row)
                self.store.release(key.fingerprint)
            else:
                self.store.put(row, release_claim=True)
            spend = Spend(record.lm_calls, record.input_tokens or 0, record.output_tokens or 0, row.cost_usd, record.latency_s, record.retries)
            return row, False, spend
        except BaseException:
            self.store.release(key.fingerprint)
            raise


def _confidence(record: CallRecord, method: str) -> dict:
    """The row's confidence columns: the probability of the label given, and of each label."""
    probabilities = (record.probabilities or {}).get("label") if record.ok else None
    if method == "none" or not probabilities:
        return {"confidence_method": "none"}
    label = str(record.prediction.label)
    return {"confidence_method": method, "probabilities": probabilities, "confidence": round(probabilities.get(label, 0.0), 6)}


def _merged(first: CallRecord, extra: CallRecord) -> CallRecord:
    """One record for a judgment and the samples taken to measure its confidence: their calls and tokens add up."""
    return replace(
        first,
        input_tokens=(first.input_tokens or 0) + (extra.input_tokens or 0),
        output_tokens=(first.output_tokens or 0) + (extra.output_tokens or 0),
        lm_calls=first.lm_calls + extra.lm_calls,
        retries=first.retries + extra.retries,
        latency_s=round(first.latency_s + extra.latency_s, 4),
    )


def _status(row: LMCall | None) -> str:
    return "missing" if row is None else row.status

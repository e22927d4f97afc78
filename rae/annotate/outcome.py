"""What a step of the program came to, from what the program answered and the calls it made: the values the rest of
rae reads (a query's guidelines, a pair's judgment), the record a run keeps of them, and what they cost.

A step's record is keyed on the first request the step made (and, for a judgment, the pair): the same program and
model asked the same thing give the same key, and any change to a prompt gives another. Records are a run's account
of what it judged, for listings, audits and review queues; reading a judgment back replays the program from the
stored answers (``rae.annotate.judging``), so a record is never served in place of what the program would say now.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import dspy

from rae.annotate.spending import Spend
from rae.datasets.records import Pair, Product
from rae.lm.calls import Call
from rae.lm.pricing import total_cost
from rae.programs.annotator import Degenerate, QueryGuidelines
from rae.programs.hostile_text import suspicious_instructions
from rae.programs.product_text import seller_text
from rae.programs.refine import Validation
from rae.store.keys import content_hash
from rae.store.schema import GuidelinesRow, JudgmentRow, RequirementsRow

T = TypeVar("T")
NO_REASONING = "no_reasoning"


@dataclass
class StepOutcome(Generic[T]):
    """A step's result: ``ok`` with a value, ``failed`` (the model's answer did not parse), ``degenerate`` (it said
    nothing), ``no_guidelines`` (its query's guidelines failed) or ``missing`` (not stored, and no call was allowed).
    ``degenerate`` names the stage and reason when this step, or one it built on, said nothing (guidelines then fall
    back to the generic rubric, and stay ``ok``). ``calls`` are the step's calls, in order."""

    value: T | None
    status: str
    cached: bool = False
    spend: Spend = field(default_factory=Spend)
    degenerate: Degenerate | None = None
    calls: list[Call] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Provenance:
    """What every record of a run names: the program, the model, the run."""

    program: str
    model_id: str
    run_id: str | None


def spend_of(calls: list[Call]) -> Spend:
    """What the calls a step paid for cost (a call served from the store costs nothing)."""
    total = Spend()
    for call in calls:
        if not call.cached:
            total = total + Spend(1, call.input_tokens or 0, call.output_tokens or 0, call.cost_usd, call.latency_s, call.retries)
    return total


def requirements_outcome(query: str, prediction: dspy.Prediction, calls: list[Call], made: Provenance) -> StepOutcome[RequirementsRow]:
    status = prediction.status
    requirements = [r.model_dump() for r in prediction.requirements] if status != "failed" else None
    row = RequirementsRow(query=query, requirements=requirements)
    _fill(row, status, prediction, calls, made, {"query": query})
    degenerate = Degenerate("requirements", prediction.error) if status == "degenerate" else None
    return StepOutcome(row, status, _cached(calls), spend_of(calls), degenerate, calls)


def guidelines_outcome(query: str, made_for: QueryGuidelines, calls: list[Call], made: Provenance) -> StepOutcome[QueryGuidelines]:
    """A query's guidelines; ``ok`` whenever the judge has guidelines to read (the query's, or the generic rubric)."""
    return StepOutcome(made_for, made_for.status, _cached(calls), spend_of(calls), made_for.degenerate, calls)


def guidelines_record(query: str, made_for: QueryGuidelines, calls: list[Call], made: Provenance) -> GuidelinesRow | None:
    """The record of a query's written guidelines (None when none were written now: the generic rubric by choice)."""
    if not calls:
        return None
    written = made_for.written
    if written is None:
        return None
    status = written.status
    row = GuidelinesRow(query=query, guidelines=made_for.guidelines.by_label() if status == "ok" else _by_label(written))
    _fill(row, status, written, calls, made, {"query": query, "requirements": [r.model_dump() for r in made_for.requirements]})
    return row


def judgment_outcome(
    pair: Pair, product: Product, prediction: dspy.Prediction, calls: list[Call], made: Provenance, confidence: str
) -> StepOutcome[JudgmentRow]:
    status = prediction.status
    if status == "no_guidelines":
        return StepOutcome(None, status, _cached(calls), spend_of(calls), calls=calls)
    flags = suspicious_instructions(seller_text(product))
    if getattr(prediction, "no_reasoning", False):
        flags = [*flags, NO_REASONING]
    guidelines = prediction.query_guidelines.guidelines
    row = JudgmentRow(
        query_id=pair.query_id,
        query=pair.query,
        product_id=pair.product_id,
        label=str(prediction.label) if status == "ok" else None,
        reasoning=getattr(prediction, "reasoning", None) if status == "ok" else None,
        visual=prediction.visual,
        guidelines_source="query" if guidelines.written_for_the_query else "generic",
        flags=",".join(flags),
        **_confidence(prediction, calls, confidence),
    )
    _fill(row, status, prediction, calls, made, {"query_id": pair.query_id, "product_id": pair.product_id})
    return StepOutcome(row, status, _cached(calls), spend_of(calls), calls=calls)


def _fill(row: GuidelinesRow | RequirementsRow | JudgmentRow, status: str, prediction: dspy.Prediction, calls: list[Call], made: Provenance,
          inputs: dict) -> None:
    """A record's key, provenance, what its calls cost, and what the model wrote (the answer kept, or the one that
    failed to parse)."""
    first = calls[0].key if calls else content_hash(inputs)
    row.fingerprint = hashlib.sha256(f"{first}|{content_hash(inputs)}".encode()).hexdigest()
    row.program_hash, row.model_id, row.input_hash, row.run_id = made.program, made.model_id, content_hash(inputs), made.run_id
    row.status = status
    row.error = prediction.error if status in ("failed", "degenerate") else None
    validation: Validation | None = getattr(prediction, "validation", None)
    row.validation = validation.as_dict() if validation is not None else None
    kept = getattr(prediction, "kept", 0)
    row.raw_output = prediction.raw_output if status == "failed" else (calls[kept - 1].text if 0 < kept <= len(calls) else None)
    row.attempts = len(calls) or 1
    row.input_tokens = sum(c.input_tokens or 0 for c in calls) if calls else None
    row.output_tokens = sum(c.output_tokens or 0 for c in calls) if calls else None
    row.cost_usd = total_cost(c.cost_usd for c in calls)  # what its answers cost, now or when paid
    row.latency_s = round(sum(c.latency_s for c in calls), 4)


def _confidence(prediction: dspy.Prediction, calls: list[Call], method: str) -> dict:
    """The probability of the label given, and of each label: the model's own (the embedded model scores the options of
    its answer), or the share of sampled answers."""
    if prediction.status != "ok" or method == "none":
        return {"confidence_method": "none"}
    if method == "samples":
        probabilities = (getattr(prediction, "probabilities", None) or {}).get("label")
    else:
        kept = prediction.kept
        probabilities = ((calls[kept - 1].probabilities or {}) if 0 < kept <= len(calls) else {}).get("label")
    if not probabilities:
        return {"confidence_method": "none"}
    label = str(prediction.label)
    return {"confidence_method": method, "probabilities": probabilities, "confidence": round(probabilities.get(label, 0.0), 6)}


def _by_label(written: dspy.Prediction) -> dict[str, str] | None:
    if written.status == "failed":
        return None
    return {label: getattr(written, label, "") for label in ("highly_relevant", "acceptable_substitute", "irrelevant")}


def _cached(calls: list[Call]) -> bool:
    return all(call.cached for call in calls)

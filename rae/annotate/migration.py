"""Answers an older rae stored, keyed again on what produced them (``rae store migrate``).

Store schema 2 keyed an answer on the model's identity and DSPy's canonical request; schema 3 keys it on what its
sender sends (``ModelHandle.sent``: a server's body, or the sender and the request). An answer of schema 2 is carried
over when its model is one the settings name (by its identity of then) and its request can be rebuilt from the stored
canonical form exactly (text requests; an image was stored as its hash): it is stored again under the new key.

Before store schema 2, rae kept each step's result in a table of its own, keyed on (stage, program hash, model
identity, input) (``rae.programs.legacy_keys``). Now an answer is keyed on what the model was sent. A stored
row is carried over when its request can be rebuilt exactly: its program is one rae knows (the plain program in any of
its settings, or an artifact in the programs directory) by the old hash; its model is one the settings name, with the
same identity; its inputs, rebuilt from the store and the catalog, have the stored input hash; and it was answered in
one call (a refining attempt or a retried parse was another request, whose prompt is not stored). Its request is
then rendered by DSPy as any call is (through a capture in place of the model), and the answer it holds is stored under
that request's key. A team's paid answers are then served as before; the others are counted by why they were not, and
asked again when a run needs them. The old rows stay where they are, as the record of the runs that made them.
"""

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dspy
from dspy.lm15 import Config, Message, Request, Response, TextPart
from dspy.utils.exceptions import LMError

from rae.config import ProductTextSpec
from rae.datasets.catalog import Catalog
from rae.lm.factory import Capabilities, ModelHandle
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES, Guidelines
from rae.programs.legacy_keys import legacy_program_hash
from rae.programs.product_text import product_text
from rae.programs.requirements import Requirement
from rae.store.keys import canonical_request, content_hash, identity_request_key, request_key
from rae.store.records import answers_of_schema_2, legacy_rows, rekeyed
from rae.store.schema import GuidelinesRow, JudgmentRow, RequirementsRow
from rae.store.store import SCHEMA_VERSION, Store

CONFIDENCE_PARTS = (None, "probabilities", *(f"samples:{n}" for n in range(2, 11)))  # how old keys named the confidence method


@dataclass
class Migration:
    """What ``rae store migrate`` did: answers carried over by stage, and the rows left, by stage and reason."""

    carried: Counter = field(default_factory=Counter)
    left: Counter = field(default_factory=Counter)

    def line(self) -> str:
        carried = sum(self.carried.values())
        left = sum(self.left.values())
        parts = [f"carried over {carried} stored answers ({', '.join(f'{n} {s}' for s, n in sorted(self.carried.items())) or 'none'})"]
        if left:
            why = "; ".join(f"{n} {stage}: {reason}" for (stage, reason), n in self.left.most_common())
            parts.append(f"not carried over: {left} ({why}); they are asked again when a run needs them")
        return "; ".join(parts) + f"; store schema {SCHEMA_VERSION}"

    def as_dict(self) -> dict[str, Any]:
        return {"carried": dict(self.carried), "not_carried": {f"{s}: {r}": n for (s, r), n in self.left.items()}}


@dataclass(frozen=True)
class KnownProgram:
    """A program rae can rebuild an old row's request with, and the product text it reads."""

    program: Annotator
    text_spec: ProductTextSpec


def migrate(store: Store, models: list[ModelHandle], programs: list[KnownProgram], catalog: Catalog) -> Migration:
    """Key the store's old answers on their requests (idempotent: an answer already carried over is skipped)."""
    done = Migration()
    by_identity = {model.identity_before_senders: model for model in models}
    _keyed_again(store, by_identity, done)
    stages = _stages(programs)
    requirements: dict[tuple[str, str, str], list[dict]] = {}
    guidelines: dict[tuple[str, str], list[Guidelines]] = {}
    answers = []
    for row in legacy_rows(store, RequirementsRow):
        found = _found(row, "requirements", stages, by_identity, done)
        if found is None:
            continue
        program, model = found
        if row.requirements is not None:
            requirements[(row.query, row.model_id, legacy_program_hash(program.program.requirements))] = row.requirements
        answers += _answer(row, "requirements", program.program.requirements.extract, {"query": row.query}, {"query": row.query}, model, done)
    for row in legacy_rows(store, GuidelinesRow):
        found = _found(row, "guidelines", stages, by_identity, done)
        if found is None:
            continue
        program, model = found
        stated = requirements.get((row.query, row.model_id, legacy_program_hash(program.program.requirements)))
        if stated is None:
            done.left[("guidelines", "its query's requirements are not stored")] += 1
            continue
        if row.guidelines is not None and row.status == "ok":
            guidelines.setdefault((row.query, row.model_id), []).append(Guidelines(**row.guidelines))
        inputs = {"query": row.query, "requirements": [Requirement.model_validate(r) for r in stated]}
        answers += _answer(row, "guidelines", program.program.guidelines.write, inputs, {"query": row.query, "requirements": stated}, model, done)
    for row in legacy_rows(store, JudgmentRow):
        found = _found(row, "judgment", stages, by_identity, done)
        if found is None:
            continue
        program, model = found
        inputs = _judgment_inputs(row, program, guidelines.get((row.query, row.model_id), []), catalog)
        if inputs is None:
            done.left[("judgment", "its inputs cannot be rebuilt (product text, guidelines or image changed)")] += 1
            continue
        answers += _answer(row, "judgment", program.program.judge.judge, inputs, None, model, done)
    store.put_answers(answers)
    store.set_meta("schema_version", SCHEMA_VERSION)
    return done


def _stages(programs: list[KnownProgram]) -> dict[tuple[str, str], KnownProgram]:
    """(stage, old program hash) -> the program whose step had that hash."""
    known: dict[tuple[str, str], KnownProgram] = {}
    for entry in programs:
        program = entry.program
        for stage, module in (("requirements", program.requirements), ("guidelines", program.guidelines), ("judgment", program.judge)):
            known.setdefault((stage, legacy_program_hash(module)), entry)
    return known


def _found(row: Any, stage: str, stages: dict, models: dict[str, ModelHandle], done: Migration) -> tuple[KnownProgram, ModelHandle] | None:
    """The program and model an old row was made with, or None (and why, counted)."""
    reason = None
    if row.status == "failed" or row.raw_output is None:
        reason = "no answer that parsed"
    elif (row.attempts or 1) > 1 or (row.validation or {}).get("attempts", 1) > 1:
        reason = "answered after several attempts (their prompts were not stored)"
    elif (stage, row.program_hash) not in stages:
        reason = "made by a program rae no longer has"
    elif row.model_id not in models:
        reason = "made by a model the settings do not name, or with other settings"
    if reason is not None:
        done.left[(stage, reason)] += 1
        return None
    return stages[(stage, row.program_hash)], models[row.model_id]


def _judgment_inputs(row: JudgmentRow, known: KnownProgram, written: list[Guidelines], catalog: Catalog) -> dict[str, str] | None:
    """The judge's inputs whose old input hash is the row's: the query, the guidelines it read, the listing."""
    product = catalog.get(row.product_id)
    if product is None or row.visual != "none":
        return None
    text = product_text(product, known.text_spec)
    for guidelines in [*written, GENERIC_GUIDELINES]:
        content = {"query": row.query, "guidelines": guidelines.render(), "product": text}
        for confidence in CONFIDENCE_PARTS:
            if content_hash(content if confidence is None else {**content, "confidence": confidence}) == row.input_hash:
                return content
    return None


def _answer(row: Any, stage: str, predictor: dspy.Module, inputs: dict, content: dict | None, model: ModelHandle, done: Migration) -> list[dict]:
    """The old answer under its request's key ([] when the stored inputs are not the ones rebuilt)."""
    if content is not None and content_hash(content) != row.input_hash:
        done.left[(stage, "its inputs cannot be rebuilt")] += 1
        return []
    request = captured_request(predictor, inputs, model)
    key, sent = request_key(model.sent(request))
    done.carried[stage] += 1
    return [{
        "fingerprint": key, "model_id": model.identity, "stage": stage, "request": sent, "text": row.raw_output, "finish_reason": "stop",
        "input_tokens": row.input_tokens, "output_tokens": row.output_tokens, "cost_usd": row.cost_usd, "latency_s": row.latency_s,
        "retries": 0, "probabilities": _probabilities(row), "run_id": row.run_id, "created_at": row.created_at or datetime.now(UTC),
    }]


def _keyed_again(store: Store, models: dict[str, ModelHandle], done: Migration) -> None:
    """Schema 2's answers under schema 3's keys: each one whose model the settings name and whose request rebuilds to
    the stored canonical form, and whose key was that model and request's (the row is this answer, not another)."""
    moved: dict[str, dict[str, Any]] = {}
    for row in answers_of_schema_2(store):
        model = models.get(row.model_id)
        request = request_from_canonical(row.request) if model is not None and isinstance(row.request, dict) else None
        if model is None:
            done.left[(row.stage or "answer", "made by a model the settings do not name, or with other settings")] += 1
        elif request is None or identity_request_key(row.model_id, request) != row.fingerprint:
            done.left[(row.stage or "answer", "its request cannot be rebuilt (an image is stored as its hash)")] += 1
        else:
            key, sent = request_key(model.sent(request))
            moved[row.fingerprint] = {"fingerprint": key, "model_id": model.identity, "request": sent}
            done.carried[row.stage or "answer"] += 1
    rekeyed(store, moved)


def request_from_canonical(canonical: dict[str, Any]) -> Request | None:
    """The ``lm15.Request`` a canonical form was made from, when it holds only text (None otherwise, or when the
    rebuilt request's canonical form is not the stored one)."""
    try:
        messages = tuple(Message(role=m["role"], parts=tuple(_text_part(p) for p in m.get("parts", []))) for m in canonical.get("messages", []))
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in (canonical.get("config") or {}).items()}
        request = Request(model=canonical["model"], messages=messages, system=canonical.get("system"), config=Config(**config))
    except (KeyError, TypeError, ValueError):
        return None
    return request if canonical_request(request) == canonical and not canonical.get("tools") else None


def _text_part(part: dict[str, Any]) -> TextPart:
    if part.get("type") != "text":
        raise ValueError("not a text part")
    return TextPart(part["text"])


def _probabilities(row: Any) -> dict | None:
    probabilities = getattr(row, "probabilities", None)
    return {"label": probabilities} if probabilities and getattr(row, "confidence_method", "") == "probabilities" else None


class _Captured(LMError):
    """The request was captured: no model is asked."""


class _Capture:
    """An engine that keeps the request DSPy rendered, and answers nothing."""

    def __init__(self, model: ModelHandle):
        capabilities = Capabilities(model)
        self.supports_response_schema, self.supported_params = capabilities.supports_response_schema, capabilities.supported_params
        self.request: Request | None = None

    def complete(self, request: Request) -> Response:
        self.request = request
        raise _Captured("captured")


def captured_request(predictor: dspy.Module, inputs: dict, model: ModelHandle) -> Request:
    """The request ``predictor`` sends this model for ``inputs``, rendered by DSPy as in any run."""
    capture = _Capture(model)
    spec = model.spec
    lm = dspy.LM(spec.name, engine=capture, temperature=spec.temperature, max_tokens=spec.max_tokens, cache=False, num_retries=0)
    with dspy.context(lm=lm, adapter=model.adapter(), disable_history=True), contextlib.suppress(_Captured):
        predictor(**inputs)
    return capture.request

"""How an older rae (before store schema 2) keyed its stored rows: (stage, program hash, model identity, input).

Kept only so that ``rae store migrate`` can find which program and inputs an old row was made with, rebuild the
request it sent, and key its answer on that request. Its flaw is why it went: the adapter entered the hash as a
constant name, so a change to the adapter's prompt changed no key.
"""

import hashlib
import json
from typing import Any

import dspy
import pydantic

ADAPTER = "JSONAdapter"


def legacy_program_hash(module: dspy.Module) -> str:
    payload = {
        "module": type(module).__qualname__,
        "predictors": {name: _predictor_fingerprint(p) for name, p in module.named_predictors()},
        "adapter": ADAPTER,
        "dspy": ".".join(dspy.__version__.split(".")[:2]),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _predictor_fingerprint(predictor: dspy.Predict) -> dict[str, Any]:
    state = predictor.dump_state()
    return {
        "signature": state["signature"],
        "demos": state["demos"],
        "types": {name: _type_description(field.annotation) for name, field in predictor.signature.fields.items()},
    }


def _type_description(annotation: Any) -> Any:
    try:
        return pydantic.TypeAdapter(annotation).json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticInvalidForJsonSchema, TypeError):
        return repr(annotation)

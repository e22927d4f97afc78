"""The hash of a program (or of one step of it) that store keys carry.

It covers everything that shapes the prompt the model sees: each predictor's instructions, field descriptions, field
types (with the JSON schema of structured types such as ``Requirement``), its demos, the adapter, and DSPy's minor
version (whose adapter formats the prompt). A compiled artifact with new demos or instructions therefore hashes
differently, and nothing it would answer differently is ever served from the store.
"""

import hashlib
import json
from typing import Any

import dspy
import pydantic

ADAPTER = "JSONAdapter"


def program_hash(module: dspy.Module) -> str:
    payload = {
        "module": type(module).__qualname__,
        "predictors": {name: predictor_fingerprint(p) for name, p in module.named_predictors()},
        "adapter": ADAPTER,
        "dspy": ".".join(dspy.__version__.split(".")[:2]),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def predictor_fingerprint(predictor: dspy.Predict) -> dict[str, Any]:
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

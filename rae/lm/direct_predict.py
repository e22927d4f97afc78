"""A ``dspy.Predict`` call without DSPy's module bookkeeping, where that bookkeeping has nothing to do.

Calling a module runs, around the one adapter call that matters, a callback wrapper, a ``settings.context`` that
records the calling modules, a usage-tracking check, and ``Predict``'s preprocessing (the LM and config chosen,
defaults filled in, inputs checked against the signature, each reading the signature's fields again). For the
judge that is three modules deep (``RelevanceJudge`` -> ``ChainOfThought`` -> ``Predict``), and at 64 workers it
was a fifth of rae's own CPU for each pair (docs/scaling.md).

``predicted`` makes the same adapter call with the same LM, config, signature and demos, and builds the prediction
(and its trace entry) with ``Predict``'s own postprocessing, but only when every part it skips would have done
nothing: no callbacks, no usage tracking, no streaming, one generation, inputs that are exactly the signature's
string fields (so no default, no warning), and an LM that keeps no history for the calling modules to share
(rae's ``ServerLM``: ``records_module_history = False``). Otherwise it calls the module. A test holds the two ways equal, prediction and request.
"""

import functools
from typing import Any

import dspy
from dspy.adapters.chat_adapter import ChatAdapter
from dspy.adapters.decision import resolve_adapter


def predicted(module: dspy.Module, inputs: dict[str, Any]) -> dspy.Prediction:
    """``module(**inputs)``; directly through its predictor when the module hands its inputs to one unchanged."""
    predictor = getattr(module, "direct_predictor", None)  # with ``direct_layers``: the modules in between
    if predictor is None or not _nothing_skipped(module, predictor, inputs):
        return module(**inputs)
    settings = dspy.settings
    lm = predictor.lm or settings.lm
    signature = predictor.signature
    adapter = resolve_adapter(lm, settings.adapter or ChatAdapter(), signature, predictor.fields, signature)
    completions = adapter(lm, lm_kwargs=dict(predictor.config), signature=signature, demos=predictor.demos, inputs=inputs)
    return predictor._forward_postprocess(completions, signature, **inputs)


def _nothing_skipped(module: dspy.Module, predictor: Any, inputs: dict[str, Any]) -> bool:
    """Whether the module layers ``predicted`` skips would have done nothing for this call."""
    settings = dspy.settings
    lm = predictor.lm or settings.lm
    if type(predictor) is not dspy.Predict or getattr(lm, "records_module_history", True):
        return False
    if settings.callbacks or settings.track_usage or settings.usage_tracker is not None or settings.send_stream is not None:
        return False
    if (predictor.config.get("n") or lm.kwargs.get("n") or lm.kwargs.get("num_generations") or 1) > 1:
        return False
    if module.callbacks or predictor.callbacks or any(layer.callbacks for layer in getattr(module, "direct_layers", ())):
        return False
    return inputs.keys() == _string_inputs(predictor.signature) and all(type(value) is str for value in inputs.values())


@functools.lru_cache(maxsize=256)
def _string_inputs(signature: type[dspy.Signature]) -> frozenset[str] | None:
    """The signature's input field names, if every one of them is a string (None otherwise): a signature's fields are
    rebuilt each time they are read, so this is worked out once per signature."""
    fields = signature.input_fields
    return frozenset(fields) if all(field.annotation is str for field in fields.values()) else None

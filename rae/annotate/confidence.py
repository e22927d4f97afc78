"""How sure the judge is of a label: the model's own label probabilities, or the agreement of sampled judgments.

The embedded model scores each label as a continuation of its answer's prefix (``rae.lm.embedded``); its engine
reports the probabilities with the completion. Any other model can be asked several times: the first answer is
greedy and is the label kept; ``samples - 1`` more at a higher temperature (each with its own seed) vote, and the
share that agree with the first is its confidence. How confidence was measured is part of a judgment's store key.
"""

from dataclasses import replace
from typing import Any

import dspy

from rae.lm.recorder import CallPolicy, CallRecord, recorded_call

SAMPLE_TEMPERATURE = 0.7


def with_samples(record: CallRecord, judge: dspy.Module, policy: CallPolicy, inputs: dict[str, Any], samples: int) -> CallRecord:
    """A judgment and ``samples - 1`` more to measure its confidence; their calls and tokens add up in one record."""
    if not record.ok:
        return record
    labels = [str(record.prediction.label)]
    for seed in range(1, samples):
        with dspy.context(lm=dspy.settings.lm.copy(temperature=SAMPLE_TEMPERATURE, seed=seed)):
            extra = recorded_call(judge, policy, **inputs)
        record = _merged(record, extra)
        if extra.ok:
            labels.append(str(extra.prediction.label))
    record.probabilities = {"label": {label: labels.count(label) / len(labels) for label in sorted(set(labels))}}
    return record


def confidence_columns(record: CallRecord, method: str) -> dict[str, Any]:
    """The judgment row's confidence columns: the probability of the label given, and of each label."""
    probabilities = (record.probabilities or {}).get("label") if record.ok else None
    if method == "none" or not probabilities:
        return {"confidence_method": "none"}
    label = str(record.prediction.label)
    return {"confidence_method": method, "probabilities": probabilities, "confidence": round(probabilities.get(label, 0.0), 6)}


def key_part(method: str, samples: int) -> str | None:
    """What the judgment's key records of the confidence method (None: nothing, as for judgments without one)."""
    if method == "none":
        return None
    return f"samples:{samples}" if method == "samples" else method


def _merged(first: CallRecord, extra: CallRecord) -> CallRecord:
    return replace(
        first,
        input_tokens=(first.input_tokens or 0) + (extra.input_tokens or 0),
        output_tokens=(first.output_tokens or 0) + (extra.output_tokens or 0),
        lm_calls=first.lm_calls + extra.lm_calls,
        retries=first.retries + extra.retries,
        latency_s=round(first.latency_s + extra.latency_s, 4),
    )

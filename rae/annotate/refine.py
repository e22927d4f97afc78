"""Outputs worth storing: an answer that parsed but says nothing is tried again, told why, then given up honestly.

The first attempt is the usual call (greedy for the embedded model). If a stage's check (``rae.programs.validators``)
finds its output degenerate, up to ``attempts - 1`` more are made at a small temperature, each with its own seed and
with the check's reason as a hint, passed the way ``dspy.Refine`` passes its advice: one more input field, ``hint_``,
appended to the signature for that attempt. The first answer that is content is kept; if none is, the caller stores
the first one with its own status. Every attempt's tokens and calls add up in one record, so the bill is true.

Why not ``dspy.Refine`` or ``dspy.BestOfN`` themselves (DSPy 3.4): both run every attempt, the first included, at
temperature 1.0; both catch every exception an attempt raises (a rate limit too) and print it on stdout, which would
break ``--json`` and bypass rae's retries and their count; and Refine asks the same LM to write its advice, a
structured output a small model cannot write. This is their loop, with those three things changed.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import dspy

from rae.lm.recorder import CallPolicy, CallRecord, recorded_call
from rae.programs.refine import HINT, HINT_DESCRIPTION, HINT_FIELD


@dataclass(frozen=True)
class Validation:
    """What the checks found: why the first answer was degenerate, how many attempts were made, why the kept one
    still is (None: it is content)."""

    first_try: str | None
    attempts: int
    final: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"first_try": self.first_try, "attempts": self.attempts, "final": self.final}


# Why a prediction is degenerate, or None. Its second argument is what the hints of earlier attempts said (the model
# must not answer by copying them).
Check = Callable[[dspy.Prediction, list[str]], str | None]


def call_until_content(
    module: dspy.Module, policy: CallPolicy, inputs: dict[str, Any], check: Check, attempts: int, temperature: float
) -> tuple[CallRecord, Validation | None]:
    """The call, and its validation (None when the first answer did not even parse: that is a parse failure)."""
    record = recorded_call(module, policy, **inputs)
    if not record.ok:
        return record, None
    first = problem = check(record.prediction, [])
    made, hints = 1, [HINT_DESCRIPTION]
    while problem is not None and made < attempts:
        lm, hints = dspy.settings.lm, [*hints, problem]
        with dspy.context(lm=lm.copy(temperature=temperature, seed=(lm.kwargs.get("seed") or 0) + made), adapter=Hinted(dspy.settings.adapter, problem)):
            again = recorded_call(module, policy, **inputs)
        made += 1
        better = again.ok and check(again.prediction, hints) is None
        record = _added(record, again, keep_prediction_of=again if better else record)
        if better:
            problem = None
    return record, Validation(first, made, problem)


class Hinted:
    """The active adapter, with the reason an earlier answer was rejected as one more input (``HINT_FIELD``)."""

    def __init__(self, adapter: Any, hint: str):
        self.adapter, self.hint = adapter, hint

    def __call__(self, lm: Any, lm_kwargs: dict, signature: type[dspy.Signature], demos: list, inputs: dict) -> list:
        return self.adapter(lm, lm_kwargs, signature.append(HINT_FIELD, HINT), demos, {**inputs, HINT_FIELD: self.hint})

    async def acall(self, lm: Any, lm_kwargs: dict, signature: type[dspy.Signature], demos: list, inputs: dict) -> list:
        return await self.adapter.acall(lm, lm_kwargs, signature.append(HINT_FIELD, HINT), demos, {**inputs, HINT_FIELD: self.hint})


def _added(first: CallRecord, extra: CallRecord, keep_prediction_of: CallRecord) -> CallRecord:
    """One record for all the attempts: calls, tokens, retries and time add up; the prediction is the one kept."""
    return replace(
        first,
        prediction=keep_prediction_of.prediction,
        probabilities=keep_prediction_of.probabilities,
        raw_output=keep_prediction_of.raw_output,
        input_tokens=(first.input_tokens or 0) + (extra.input_tokens or 0),
        output_tokens=(first.output_tokens or 0) + (extra.output_tokens or 0),
        attempts=first.attempts + extra.attempts,
        lm_calls=first.lm_calls + extra.lm_calls,
        retries=first.retries + extra.retries,
        latency_s=round(first.latency_s + extra.latency_s, 4),
    )

"""Call a DSPy module and keep what the store needs of the call: what the model wrote, tokens, time, and failures.

DSPy's LM history is shared by every thread, so it cannot tell which call was whose. A callback and a usage tracker
installed with ``dspy.context`` for one call are thread-local, and record exactly that call's LM traffic.

A completion that does not parse into the signature's fields is retried (``parse_retries``) at a higher temperature:
at temperature 0 the same prompt would give the same unparseable text. If it still fails, the result is a failure
that keeps the raw text, and the caller stores it: it was paid for.
"""

import time
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.exceptions import AdapterParseError

RETRY_TEMPERATURE = 0.7


@dataclass
class CallRecord:
    prediction: dspy.Prediction | None
    raw_output: str | None
    error: str | None
    attempts: int
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float
    lm_calls: int

    @property
    def ok(self) -> bool:
        return self.prediction is not None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"


class RawOutputs(BaseCallback):
    """Collects the text of every LM completion made while it is installed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def on_lm_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        if exception is None and outputs:
            self.texts.append(_text_of(outputs[-1] if isinstance(outputs, list) else outputs))


def recorded_call(module: dspy.Module, parse_retries: int = 1, **inputs: Any) -> CallRecord:
    """Run ``module(**inputs)`` under the configured LM. LM errors (network, rate limit after DSPy's retries,
    authentication) propagate: they are not the model's answer and must not be stored as one."""
    outputs = RawOutputs()
    started = time.perf_counter()
    prediction, error, attempts = None, None, 0
    with dspy.context(callbacks=[*dspy.settings.get("callbacks", []), outputs]), dspy.track_usage() as usage:
        for attempt in range(parse_retries + 1):
            attempts += 1
            lm = dspy.settings.lm if attempt == 0 else dspy.settings.lm.copy(temperature=RETRY_TEMPERATURE)
            try:
                with dspy.context(lm=lm):
                    prediction = module(**inputs)
                error = None
                break
            except AdapterParseError as exc:
                error = _first_line(str(exc))
                if not outputs.texts and exc.lm_response:
                    outputs.texts.append(exc.lm_response)
    tokens_in, tokens_out = _token_totals(usage.usage_data)
    return CallRecord(
        prediction=prediction,
        raw_output=outputs.texts[-1] if outputs.texts else None,
        error=error,
        attempts=attempts,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        latency_s=round(time.perf_counter() - started, 4),
        lm_calls=max(len(outputs.texts), attempts),
    )


def _text_of(output: Any) -> str:
    if isinstance(output, dict):
        return str(output.get("text", output))
    return str(output)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0][:500] if message.strip() else "unparseable output"


def _token_totals(usage_data: dict[str, list[dict[str, Any]]]) -> tuple[int | None, int | None]:
    entries = [entry for per_lm in usage_data.values() for entry in per_lm]
    if not entries:
        return None, None
    return (
        sum(entry.get("prompt_tokens") or 0 for entry in entries),
        sum(entry.get("completion_tokens") or 0 for entry in entries),
    )

"""Call a DSPy module and keep what the store needs of the call: what the model wrote, tokens, time, and failures.

DSPy's LM history is shared by every thread, so it cannot tell which call was whose. A callback and a usage tracker
installed with ``dspy.context`` for one call are thread-local, and record exactly that call's LM traffic.

Each attempt first takes a slot from the model's rate limiter, and charges it the tokens it used. A transient LM
error (429, 5xx, timeout, dropped connection) is retried by the ``RetryPolicy``; when the retries run out it
propagates, because it is not the model's answer and must not be stored as one. A completion that does not parse into
the signature's fields is retried (``parse_retries``) at a higher temperature, since at temperature 0 the same prompt
would give the same text; if it still fails, the result is a failure that keeps the raw text, and the caller stores
it: it was paid for.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.exceptions import AdapterParseError

from rae.lm.limits import RateLimiter
from rae.lm.retry import RETRYABLE, RetryPolicy

RETRY_TEMPERATURE = 0.7


@dataclass
class CallPolicy:
    """How calls to one model are paced and retried."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    parse_retries: int = 1
    sleep: Callable[[float], None] = time.sleep


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
    retries: int = 0

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


def recorded_call(module: dspy.Module, policy: CallPolicy | None = None, **inputs: Any) -> CallRecord:
    """Run ``module(**inputs)`` under the configured LM, paced and retried by ``policy``."""
    policy = policy or CallPolicy()
    outputs = RawOutputs()
    started = time.perf_counter()
    prediction, error, attempts, retries, charged = None, None, 0, 0, 0
    with dspy.context(callbacks=[*dspy.settings.get("callbacks", []), outputs]), dspy.track_usage() as usage:
        while True:
            attempts += 1
            lm = dspy.settings.lm if error is None else dspy.settings.lm.copy(temperature=RETRY_TEMPERATURE)
            policy.limiter.acquire()
            try:
                with dspy.context(lm=lm):
                    prediction = module(**inputs)
                error = None
                break
            except RETRYABLE as exc:
                retries += 1
                if retries > policy.retry.max_retries:
                    raise
                policy.sleep(policy.retry.delay(retries, exc))
            except AdapterParseError as exc:
                error = _first_line(str(exc))
                if not outputs.texts and exc.lm_response:
                    outputs.texts.append(exc.lm_response)
                if attempts - retries > policy.parse_retries:
                    break
            finally:
                used = sum(_token_totals(usage.usage_data))
                policy.limiter.spend(used - charged)
                charged = used
    tokens_in, tokens_out = _token_totals(usage.usage_data)
    return CallRecord(
        prediction=prediction,
        raw_output=outputs.texts[-1] if outputs.texts else None,
        error=error,
        attempts=attempts,
        input_tokens=tokens_in if usage.usage_data else None,
        output_tokens=tokens_out if usage.usage_data else None,
        latency_s=round(time.perf_counter() - started, 4),
        lm_calls=max(len(outputs.texts), attempts - retries),
        retries=retries,
    )


def _text_of(output: Any) -> str:
    if isinstance(output, dict):
        return str(output.get("text", output))
    return str(output)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0][:500] if message.strip() else "unparseable output"


def _token_totals(usage_data: dict[str, list[dict[str, Any]]]) -> tuple[int, int]:
    entries = [entry for per_lm in usage_data.values() for entry in per_lm]
    return (
        sum(entry.get("prompt_tokens") or 0 for entry in entries),
        sum(entry.get("completion_tokens") or 0 for entry in entries),
    )

"""Call a DSPy module and keep what the store needs of the call: what the model wrote, tokens, time, and failures.

DSPy's LM history is shared by every thread, so it cannot tell which call was whose. rae's own engines (the embedded
model, OpenAI-compatible servers) report each completion's text and tokens into a context variable that this call
sets: it is thread-local, and costs nothing. For DSPy's built-in engines, a callback and a usage tracker installed
with ``dspy.context`` for the one call do the same; they cost about 1.5 ms of CPU a call (DSPy then binds the
arguments of every wrapped call), which is why rae's engines do not use them.

Each attempt first takes a slot from the model's rate limiter, and charges it the tokens it used. A transient LM
error (429, 5xx, timeout, dropped connection) is retried by the ``RetryPolicy``; when the retries run out it
propagates, because it is not the model's answer and must not be stored as one. A completion that does not parse into
the signature's fields is retried (``parse_retries``) at a higher temperature, since at temperature 0 the same prompt
would give the same text; if it still fails, the result is a failure that keeps the raw text, and the caller stores
it: it was paid for.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.exceptions import AdapterParseError

from rae.lm.direct_predict import predicted
from rae.lm.limits import RateLimiter
from rae.lm.retry import RETRYABLE, RetryPolicy
from rae.secrets import redact

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
    probabilities: dict[str, dict[str, float]] | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"


@dataclass
class Completion:
    text: str
    input_tokens: int | None
    output_tokens: int | None
    probabilities: dict[str, dict[str, float]] | None = None  # per choice field: the model's probability of each option


_completions: ContextVar[list[Completion] | None] = ContextVar("rae_completions", default=None)


def report_completion(
    text: str, input_tokens: int | None, output_tokens: int | None, probabilities: dict[str, dict[str, float]] | None = None
) -> None:
    """Called by rae's engines for every completion, so the call being recorded gets its text, tokens, and (where the
    engine can measure them) the probabilities of the options of its choice fields."""
    sink = _completions.get()
    if sink is not None:
        sink.append(Completion(text, input_tokens, output_tokens, probabilities))


class RawOutputs(BaseCallback):
    """Collects the text of every LM completion made while it is installed (for DSPy's built-in engines)."""

    def __init__(self, sink: list[Completion] | None = None) -> None:
        self.completions = sink if sink is not None else []

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.completions]

    def on_lm_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        if exception is None and outputs:
            self.completions.append(Completion(_text_of(outputs[-1] if isinstance(outputs, list) else outputs), None, None))


def recorded_call(module: dspy.Module, policy: CallPolicy | None = None, **inputs: Any) -> CallRecord:
    """Run ``module(**inputs)`` under the configured LM, paced and retried by ``policy``."""
    policy = policy or CallPolicy()
    started = time.perf_counter()
    prediction, error, attempts, retries = None, None, 0, 0
    with _capturing(dspy.settings.lm) as completions:
        while True:
            attempts += 1
            lm = dspy.settings.lm if error is None else dspy.settings.lm.copy(temperature=RETRY_TEMPERATURE)
            policy.limiter.acquire()
            try:
                with dspy.context(lm=lm) if lm is not dspy.settings.lm else _nothing():
                    prediction = predicted(module, inputs)
                error = None
                break
            except RETRYABLE as exc:
                retries += 1
                if retries > policy.retry.max_retries:
                    raise
                policy.sleep(policy.retry.delay(retries, exc))
            except AdapterParseError as exc:
                error = _first_line(str(exc))
                if not completions and exc.lm_response:
                    completions.append(Completion(exc.lm_response, None, None))
                if attempts - retries > policy.parse_retries:
                    break
    policy.limiter.spend(sum((c.input_tokens or 0) + (c.output_tokens or 0) for c in completions))
    reported = [c for c in completions if c.input_tokens is not None or c.output_tokens is not None]
    return CallRecord(
        prediction=prediction,
        raw_output=completions[-1].text if completions else None,
        error=error,
        attempts=attempts,
        input_tokens=sum(c.input_tokens or 0 for c in reported) if reported else None,
        output_tokens=sum(c.output_tokens or 0 for c in reported) if reported else None,
        latency_s=round(time.perf_counter() - started, 4),
        lm_calls=max(len(reported), attempts - retries),
        retries=retries,
        probabilities=completions[-1].probabilities if completions and prediction is not None else None,
    )


@contextmanager
def _capturing(lm: dspy.LM) -> Iterator[list[Completion]]:
    """The completions of the calls made inside the block: reported by rae's engines, or collected by DSPy's hooks."""
    sink: list[Completion] = []
    token = _completions.set(sink)
    try:
        if getattr(lm.engine, "reports_completions", False):
            yield sink
            return
        with dspy.context(callbacks=[*dspy.settings.get("callbacks", []), RawOutputs(sink)]), dspy.track_usage() as usage:
            try:
                yield sink
            finally:
                if sink and usage.usage_data:  # DSPy tracks tokens for the whole block: they go on the last completion
                    sink[-1].input_tokens, sink[-1].output_tokens = _token_totals(usage.usage_data)
    finally:
        _completions.reset(token)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _text_of(output: Any) -> str:
    if isinstance(output, dict):
        return str(output.get("text", output))
    return str(output)


def _first_line(message: str) -> str:
    message = redact(message)
    return message.strip().splitlines()[0][:500] if message.strip() else "unparseable output"


def _token_totals(usage_data: dict[str, list[dict[str, Any]]]) -> tuple[int, int]:
    entries = [entry for per_lm in usage_data.values() for entry in per_lm]
    return (
        sum(entry.get("prompt_tokens") or 0 for entry in entries),
        sum(entry.get("completion_tokens") or 0 for entry in entries),
    )

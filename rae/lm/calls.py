"""The LM calls one step made: each answer, whether the store had it, what it cost, and which step asked.

A run wraps each step (a query's guidelines, a pair's judgment) in ``call_log()``; the store's engine records every
call made inside it, in order. The log is a context variable: each task (and each thread DSPy hands work to) sees its
own, so many steps in flight never mix their calls. What a step cost is the sum of the calls it paid for; what the
model wrote is in the log too, for the calls whose answer the program kept.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    key: str  # the request's store key
    cached: bool  # served from the store (nothing paid now; the cost, time and retries are the answer's, when it was paid)
    text: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_s: float
    retries: int = 0  # transient errors retried before this answer
    probabilities: dict[str, dict[str, float]] | None = None  # per choice field: the model's probability of each option


_log: ContextVar[list[Call] | None] = ContextVar("rae_call_log", default=None)
_stage: ContextVar[str] = ContextVar("rae_stage", default="")


@contextmanager
def call_log(stage: str = "") -> Iterator[list[Call]]:
    """The calls made inside the block, by whatever asks; ``stage`` names the step for the stored answers."""
    calls: list[Call] = []
    log_token, stage_token = _log.set(calls), _stage.set(stage)
    try:
        yield calls
    finally:
        _log.reset(log_token)
        _stage.reset(stage_token)


def record(call: Call) -> None:
    calls = _log.get()
    if calls is not None:
        calls.append(call)


def current_stage() -> str:
    return _stage.get()

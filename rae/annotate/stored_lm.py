"""Every LM call of rae's program, through the store: the model as a DSPy engine whose answers are keyed on what is
sent, within the run's budget.

The program runs as any DSPy program does: its modules call their predictors, the adapter renders the prompt, and
``dspy.LM`` builds the canonical ``lm15.Request`` and hands it to its engine. The engine here is the store's, and it is
the one place every call passes: it keys the request on what the sender would send (``ModelHandle.sent``), serves a
stored answer, or, when the store misses, reserves the call's most possible cost (``rae.annotate.call_gate``) as it
claims the key, has the sender (llama.cpp, a server, one of DSPy's engines) answer it, paced by the model's rate
limits and retried on a transient error, stores the answer and settles the reservation (``rae.annotate.executor``).

That path is written once, for an event loop (``acomplete``, a run's many calls in flight). A call from a thread (an
optimizer's) runs the same path on a loop of its own, with the sender's blocking ``complete`` in place of its
``acomplete``. Each call is written in the call log of the step that made it (``rae.lm.calls``). A lookup-only run
(``allow_calls=False``) answers from the store alone, and a request it has no answer for is ``NotStored``.
"""

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage
from dspy.utils.exceptions import LMError

from rae.annotate.call_gate import CallGate
from rae.annotate.executor import CacheThrough, Through, run_to_completion
from rae.lm.batched import CURRENT_KEY
from rae.lm.calls import Call, current_stage, record
from rae.lm.factory import ModelHandle
from rae.lm.retry import RETRYABLE, Retries
from rae.secrets import redact
from rae.store.keys import request_key

Send = Callable[[Request], Awaitable[Response]]


class NotStored(LMError):
    """Not an answer: a lookup-only run has no stored answer for this request."""


@dataclass(frozen=True)
class Counted:
    """Calls paid for so far, and their tokens (for work that DSPy spreads over its own threads: an optimizer's)."""

    calls: int = 0
    tokens: int = 0

    def __sub__(self, other: "Counted") -> "Counted":
        return Counted(self.calls - other.calls, self.tokens - other.tokens)


class StoredCalls:
    def __init__(self, executor: CacheThrough, model: ModelHandle, sender: Any, run_id: str | None = None, allow_calls: bool = True,
                 gate: CallGate | None = None):
        self.executor, self.model, self.sender, self.run_id, self.allow_calls, self.gate = executor, model, sender, run_id, allow_calls, gate
        self.supports_response_schema = sender.supports_response_schema
        self.supported_params = sender.supported_params
        self._paid = Counted()
        self._lock = threading.Lock()

    def counted(self) -> Counted:
        return self._paid

    async def acomplete(self, request: Request) -> Response:
        return await self._served(request, self.sender.acomplete)

    def complete(self, request: Request) -> Response:
        """``acomplete`` from a thread: the same path on a loop of its own, the sender's call blocking it."""

        async def blocking(sent: Request) -> Response:
            return self.sender.complete(sent)

        return run_to_completion(self._served(request, blocking))

    async def _served(self, request: Request, send: Send) -> Response:
        key, sent = request_key(self.model.sent(request))
        if not self.allow_calls:
            return self._response(key, Through(await self.executor.alookup(key), paid=False), request)
        reservation = self.gate.reservation(request) if self.gate is not None else None
        through = await self.executor.athrough(key, lambda: self._pay(key, sent, request, send), reservation)
        return self._response(key, through, request)

    async def _pay(self, key: str, sent: dict[str, Any], request: Request, send: Send) -> dict[str, Any]:
        """The call, retried on a transient error (the waits paced by the model's policy), as the answer to store."""
        policy, retries, started = self.model.call_policy, Retries(self.model.call_policy.retry), time.perf_counter()
        token = CURRENT_KEY.set(key)  # which call is being paid, for a batch's capture (rae.lm.batched)
        try:
            while True:
                await policy.limiter.aacquire()
                try:
                    response = await send(request)
                    break
                except RETRYABLE as error:
                    await policy.asleep(retries.wait(error))
        finally:
            CURRENT_KEY.reset(token)
        return self._answer(key, sent, response, time.perf_counter() - started, retries.count)

    def _answer(self, key: str, sent: dict[str, Any], response: Response, latency_s: float, retries: int) -> dict[str, Any]:
        """The answer as stored: what the model wrote (keys redacted out of it), what it cost, and what was sent."""
        usage = response.usage
        self.model.call_policy.limiter.spend((usage.input_tokens or 0) + (usage.output_tokens or 0))
        return {
            "fingerprint": key,
            "model_id": self.model.identity,
            "stage": current_stage(),
            "request": sent,
            "text": redact(response.text or ""),
            "finish_reason": response.finish_reason or "stop",
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cost_usd": self.model.cost(usage.input_tokens, usage.output_tokens),
            "latency_s": round(latency_s, 4),
            "retries": retries,
            "probabilities": (response.provider_data or {}).get("probabilities"),
            "run_id": self.run_id,
            "created_at": datetime.now(UTC),
        }

    def _response(self, key: str, through: Through, request: Request) -> Response:
        answer = through.answer
        if answer is None:
            raise NotStored(f"no stored answer for {key[:12]} (a lookup-only run)")
        value = answer.get if isinstance(answer, dict) else lambda name: getattr(answer, name)
        if through.paid:
            with self._lock:
                self._paid = Counted(self._paid.calls + 1, self._paid.tokens + (value("input_tokens") or 0) + (value("output_tokens") or 0))
        record(Call(
            key=key, cached=not through.paid, text=value("text"), input_tokens=value("input_tokens"), output_tokens=value("output_tokens"),
            cost_usd=value("cost_usd"), latency_s=value("latency_s") or 0.0, retries=value("retries") or 0, probabilities=value("probabilities"),
        ))
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(value("text"))]),
            finish_reason=value("finish_reason") or "stop",
            usage=Usage(input_tokens=value("input_tokens"), output_tokens=value("output_tokens")),
            provider_data={"probabilities": value("probabilities")},
        )


class StoredEngine:
    """DSPy's engine contract (``complete(Request) -> Response``) over the store's calls, for calls from threads."""

    def __init__(self, calls: StoredCalls):
        self.calls = calls
        self.supports_response_schema = calls.supports_response_schema
        self.supported_params = calls.supported_params

    def complete(self, request: Request) -> Response:
        return self.calls.complete(request)


class AsyncStoredEngine:
    """DSPy's async engine contract (``async complete``) over the store's calls, for a run's event loop."""

    def __init__(self, calls: StoredCalls):
        self.calls = calls

    async def complete(self, request: Request) -> Response:
        return await self.calls.acomplete(request)


def stored_lm(calls: StoredCalls) -> dspy.LM:
    """The model as DSPy's LM, every call through the store. DSPy's own cache and retries are off: the store is the
    cache, and rae retries (with jitter, counted)."""
    spec = calls.model.spec
    return dspy.LM(spec.name, engine=StoredEngine(calls), async_engine=AsyncStoredEngine(calls), temperature=spec.temperature,
                   max_tokens=spec.max_tokens, cache=False, num_retries=0)

"""Every LM call of rae's program, through the store: the model as a DSPy engine whose answers are keyed on what it
is sent.

The program runs as any DSPy program does: its modules call their predictors, the adapter renders the prompt, and
``dspy.LM`` builds the canonical ``lm15.Request`` and hands it to its engine. The engine here is the store's: it keys
the request (``rae.store.keys.request_key``), serves a stored answer, or has the model's own engine (the sender:
llama.cpp, an HTTP server, DSPy's LiteLLM or lm15) answer it once, paced by the model's rate limits and retried on a
transient error, and stores the answer. Both of DSPy's contracts are met: ``complete`` for calls from threads (an
optimizer's), and an async engine for a run's calls on one event loop. Each call is written in the call log of the
step that made it (``rae.lm.calls``). A lookup-only run (``allow_calls=False``) answers from the store alone, and a
request it has no answer for is ``NotStored``.
"""

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage
from dspy.utils.exceptions import LMError

from rae.annotate.executor import CacheThrough, Through
from rae.lm.batched import CURRENT_KEY
from rae.lm.calls import Call, current_stage, record
from rae.lm.factory import ModelHandle
from rae.lm.retry import RETRYABLE, Retries
from rae.secrets import redact
from rae.store.keys import request_key


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
    def __init__(self, executor: CacheThrough, model: ModelHandle, sender: Any, run_id: str | None = None, allow_calls: bool = True):
        self.executor, self.model, self.sender, self.run_id, self.allow_calls = executor, model, sender, run_id, allow_calls
        self.supports_response_schema = sender.supports_response_schema
        self.supported_params = sender.supported_params
        self._paid = Counted()
        self._lock = threading.Lock()

    def counted(self) -> Counted:
        return self._paid

    def complete(self, request: Request) -> Response:
        key, canonical = request_key(self.model.identity, request)
        if not self.allow_calls:
            return self._served(key, Through(self.executor.lookup(key), paid=False), request)
        return self._served(key, self.executor.through(key, lambda: self._pay(key, canonical, request)), request)

    async def acomplete(self, request: Request) -> Response:
        key, canonical = request_key(self.model.identity, request)
        if not self.allow_calls:
            return self._served(key, Through(await self.executor.alookup(key), paid=False), request)
        return self._served(key, await self.executor.athrough(key, lambda: self._apay(key, canonical, request)), request)

    def _pay(self, key: str, canonical: dict[str, Any], request: Request) -> dict[str, Any]:
        policy, retries, started = self.model.call_policy, Retries(self.model.call_policy.retry), time.perf_counter()
        token = CURRENT_KEY.set(key)  # which call is being paid, for a batch's capture (rae.lm.batched)
        try:
            while True:
                policy.limiter.acquire()
                try:
                    response = self.sender.complete(request)
                    break
                except RETRYABLE as error:
                    policy.sleep(retries.wait(error))
        finally:
            CURRENT_KEY.reset(token)
        return self._answer(key, canonical, response, time.perf_counter() - started, retries.count)

    async def _apay(self, key: str, canonical: dict[str, Any], request: Request) -> dict[str, Any]:
        policy, retries, started = self.model.call_policy, Retries(self.model.call_policy.retry), time.perf_counter()
        token = CURRENT_KEY.set(key)
        try:
            while True:
                await policy.limiter.aacquire()
                try:
                    response = await self.sender.acomplete(request)
                    break
                except RETRYABLE as error:
                    await policy.asleep(retries.wait(error))
        finally:
            CURRENT_KEY.reset(token)
        return self._answer(key, canonical, response, time.perf_counter() - started, retries.count)

    def _answer(self, key: str, canonical: dict[str, Any], response: Response, latency_s: float, retries: int) -> dict[str, Any]:
        """The answer as stored: what the model wrote (keys redacted out of it), what it cost, and what was asked."""
        usage = response.usage
        self.model.call_policy.limiter.spend((usage.input_tokens or 0) + (usage.output_tokens or 0))
        return {
            "fingerprint": key,
            "model_id": self.model.identity,
            "stage": current_stage(),
            "request": canonical,
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

    def _served(self, key: str, through: Through, request: Request) -> Response:
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

"""Batch APIs: the requests a run would send, noted under their store keys instead of sent.

A batch is the same work as the online calls, sent in one file at half the price. rae runs its program as usual with
``BatchCapture`` in place of the model: each call it would pay for is noted (the chat-completions body the batch model's
``sent`` gives, the very body its store key is computed from, under that key, which becomes the batch line's
``custom_id``) and deferred. The batch's answers are stored under those keys (``rae.scaleout.batch``), so the next run
finds them in the store, and goes on to the calls that depend on them. A batch and an online call to the same server
share a key exactly when their bodies are equal.
"""

import threading
from contextvars import ContextVar
from typing import Any

from dspy.lm15 import Request, Response
from dspy.utils.exceptions import LMError

from rae.lm.calls import current_stage

CURRENT_KEY: ContextVar[str | None] = ContextVar("rae_current_key", default=None)  # the store key of the call being paid


class Deferred(LMError):
    """Not an answer: this call is waiting for a batch (or was just written into one)."""


class BatchCapture:
    """Notes each request under its key and defers it. It declares the capabilities of the model's online engine, so
    DSPy renders the very request an online run would send."""

    def __init__(self, model: Any, supports_response_schema: bool, supported_params: frozenset[str]):
        self.model = model  # the batch's ModelHandle: what it sends
        self.supports_response_schema, self.supported_params = supports_response_schema, supported_params
        self.bodies: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, Request] = {}  # for what each may cost
        self.stages: dict[str, str] = {}  # which step asked for each
        self._lock = threading.Lock()

    def complete(self, request: Request) -> Response:
        key = CURRENT_KEY.get()
        if key is None:
            raise RuntimeError("a batch captures only calls made through rae's store")
        with self._lock:
            self.bodies[key] = self.model.sent(request)["body"]
            self.requests[key] = request
            self.stages[key] = current_stage()
        raise Deferred(f"deferred to a batch: {key[:12]}")

    async def acomplete(self, request: Request) -> Response:
        return self.complete(request)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

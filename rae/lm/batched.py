"""Engines for batch APIs: one that captures each request a step would send, one that answers from a batch's results.

A batch is the same work as the online calls, sent in one file at half the price. rae runs its steps as usual, with
one of these engines in place of the model: the first raises ``Deferred`` for each call after noting its request
body under the key of the step that made it (``CURRENT_KEY``, set by the step); the second answers each step with the
completion the batch returned for its key (and ``Deferred`` where there is none yet). So a result is parsed, checked
and stored exactly as an online answer, under the same key: a later online run finds it in the store.
"""

import threading
from contextvars import ContextVar
from typing import Any

from dspy import lm15
from dspy.lm15 import Message, Request, Response, TextPart, Usage
from dspy.utils.exceptions import LMError

from rae.config import StructuredOutput
from rae.lm.recorder import report_completion
from rae.lm.server import chat_body

CURRENT_KEY: ContextVar[str | None] = ContextVar("rae_current_key", default=None)  # the store key of the step calling


class Deferred(LMError):
    """Not an answer: this call is waiting for a batch (or was just written into one)."""


class CaptureEngine:
    """Notes each request body under the key of the step that made it, and defers the call."""

    supports_response_schema = True
    reports_completions = True
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "seed", "stop"})

    def __init__(self, model: str, structured_output: StructuredOutput):
        self.model, self.structured_output = model, structured_output
        self.bodies: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def complete(self, request: Request) -> Response:
        key = CURRENT_KEY.get()
        if key is None:
            raise lm15.InvalidRequestError("a batch captures only the calls of rae's steps", provider="batch")
        with self._lock:
            self.bodies[key] = chat_body(request, self.model, self.structured_output)
        raise Deferred(f"deferred to a batch: {key[:12]}")

    def stream(self, request: Request) -> Any:
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        pass


class ReplayEngine:
    """Answers each step with the completion a batch returned for its key."""

    supports_response_schema = True
    reports_completions = True
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "seed", "stop"})

    def __init__(self, completions: dict[str, dict[str, Any]]):
        self.completions = completions  # key -> {"text", "input_tokens", "output_tokens"}

    def complete(self, request: Request) -> Response:
        answer = self.completions.get(CURRENT_KEY.get() or "")
        if answer is None:
            raise Deferred("no batch answer for this step yet")
        report_completion(answer["text"], answer.get("input_tokens"), answer.get("output_tokens"))
        usage = Usage(input_tokens=answer.get("input_tokens"), output_tokens=answer.get("output_tokens"))
        return Response(id=None, model=request.model, message=Message.assistant([TextPart(answer["text"])]), finish_reason="stop", usage=usage)

    def stream(self, request: Request) -> Any:
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        pass

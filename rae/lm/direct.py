"""``dspy.LM`` for rae's OpenAI-compatible engine, whose plain text calls go straight to the server.

A DSPy LM call passes the adapter's chat messages through DSPy's execution layer: engine selection, a canonical
``lm15.Request`` built from the messages, the engine's conversion of it back into the chat body it came from, a
``Response``, a history entry. At 64 workers against a server that answers in 200 ms, that layer was about 0.45 ms of
rae's CPU a call (alternating runs, docs/throughput.md), a sixth of all of it, for a body that is the adapter's
messages plus four settings. This LM sends that body itself, built as ``chat_body`` builds it from DSPy's request (a
test holds the two equal, byte for byte, in every structured-output mode), and hands the adapter the completion's
text as DSPy would. Errors are DSPy's (``error_boundary``), so rae's retries and its fatal errors see the same types.

DSPy's own path is taken whenever this one would differ from it: a callback or usage tracker is installed (the
optimizer's bookkeeping), a message carries an image, or the call asks for anything but temperature, max_tokens,
seed, stop and response_format (a schema model is sent as DSPy sends it, strict and named after the model). No history entry is kept on the direct path: rae's store is the record of each call.
"""

import logging
import weakref
from typing import Any

import dspy
import pydantic
from dspy.clients.errors import error_boundary
from dspy.clients.legacy_requests import _strict_json_schema

from rae.lm.server import OpenAICompatibleEngine, plain_body

SETTINGS = frozenset({"temperature", "max_tokens", "seed", "stop", "response_format"})


class ServerLM(dspy.LM):
    # Its direct path keeps no history, so a call need not tell it which modules are calling (rae.lm.direct_predict).
    records_module_history = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._schemas: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()  # shared by copies

    def __call__(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None, **kwargs: Any) -> Any:
        body = self._direct_body(prompt, messages, kwargs)
        if body is None:
            return super().__call__(prompt, messages=messages, **kwargs)
        with error_boundary(self.model, unexpected=True):
            answer = self.engine.send(body)
        if answer.finish_reason == "length":
            logging.getLogger("dspy.clients.lm").warning("LM response was truncated; increase max_tokens or inspect history.")
        return [answer.text]

    def _direct_body(self, prompt: str | None, messages: list[dict[str, Any]] | None, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The body to send, or None where DSPy's own path must run."""
        engine = self.engine
        if prompt is not None or messages is None or not isinstance(engine, OpenAICompatibleEngine):
            return None
        if dspy.settings.get("callbacks") or self.callbacks or dspy.settings.usage_tracker is not None:
            return None
        settings = {key: value for key, value in {**self.kwargs, **kwargs}.items() if value is not None}
        if not settings.keys() <= SETTINGS or not _plain(messages):
            return None
        response_format = settings.get("response_format")
        if isinstance(response_format, type) and issubclass(response_format, pydantic.BaseModel):
            settings["response_format"] = self._schema_format(response_format)
        elif not _known_format(response_format):
            return None
        return plain_body(messages, settings, engine.model, engine.structured_output)

    def _schema_format(self, model: type[pydantic.BaseModel]) -> dict[str, Any]:
        """The chat-completions format DSPy sends for a schema model (strict, named after it), once per model."""
        known = self._schemas.get(model)
        if known is None:
            schema = _strict_json_schema(model.model_json_schema())
            known = self._schemas[model] = {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": schema, "strict": True}}
        return known


def _plain(messages: list[dict[str, Any]]) -> bool:
    """Text messages only, a system message only first: what DSPy's request carries as they are."""
    return all(
        type(message) is dict
        and message.keys() == {"role", "content"}
        and type(message["content"]) is str
        and (message["role"] in ("user", "assistant") or (message["role"] == "system" and i == 0))
        for i, message in enumerate(messages)
    )


def _known_format(response_format: Any) -> bool:
    if response_format is None:
        return True
    if type(response_format) is not dict or response_format.get("type") not in ("text", "json_object", "json_schema"):
        return False
    inner = response_format.get("json_schema")
    schema_ok = response_format["type"] != "json_schema" or (type(inner) is dict and "schema" in inner and inner.keys() <= {"name", "schema", "strict"})
    return response_format.keys() <= {"type", "json_schema"} and schema_ok

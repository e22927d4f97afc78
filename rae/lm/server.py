"""A lean DSPy engine for OpenAI-compatible chat-completions servers: vLLM, Ollama, llama.cpp's server, TGI, LM Studio.

It is the default for a model with an ``api_base``, for three reasons measured on such servers:

- DSPy's built-in engines look the model up in a metadata snapshot on every call (capabilities before, price after);
  for a model the snapshot does not know, which is every self-hosted model, each lookup scans the whole snapshot. At
  64 workers that, not the server, was the bottleneck. A custom engine declares its capabilities and is not priced by
  DSPy (rae prices calls itself).
- DSPy's native engine sends ``max_completion_tokens``, which llama.cpp's server ignores; this engine sends
  ``max_tokens``, which every such server honours.
- Servers disagree on structured output: llama.cpp's server rejects a ``json_schema`` response format but takes a
  schema inside ``json_object``; vLLM and Ollama take ``json_schema``. ``structured_output`` says which to send.

Errors map onto DSPy's taxonomy, so rae's retry policy sees a 429 (with its Retry-After), a 5xx, a timeout or a refused
connection as transient, and a 401 or an unknown model as final.
"""

import base64
import json
from dataclasses import dataclass
from typing import Any

import orjson
from dspy import lm15
from dspy.lm15 import ImagePart, Message, Request, Response, TextPart, Usage

from rae.config import StructuredOutput
from rae.lm.connections import KeepAliveConnections
from rae.lm.recorder import report_completion


class OpenAICompatibleEngine:
    reports_completions = True  # see rae.lm.recorder
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "seed", "stop"})

    def __init__(
        self,
        api_base: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        structured_output: StructuredOutput = "json_object",
    ):
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.model = model
        self.structured_output = structured_output
        self.supports_response_schema = structured_output in ("json_schema", "llama_cpp")
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.connections = KeepAliveConnections(self.url, headers, timeout_s)

    def complete(self, request: Request) -> Response:
        answer = self.send(self._body(request))
        return Response(
            id=answer.id,
            model=request.model,
            message=Message.assistant([TextPart(answer.text)]),
            finish_reason=answer.finish_reason,
            usage=Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens),
        )

    def send(self, body: dict[str, Any]) -> "Answer":
        """POST one chat-completions body; the completion's text and usage, reported to the call being recorded."""
        status, headers, payload = self.connections.post(orjson.dumps(body))  # a fifth of json's CPU for a prompt-sized body
        if status != 200:
            raise _http_error(self.url, status, headers, payload)
        try:
            data = orjson.loads(payload)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise lm15.ServerError(f"{self.url} answered 200 with a body that is not a chat completion", provider="server", status=200) from None
        usage = data.get("usage") or {}
        report_completion(text, usage.get("prompt_tokens"), usage.get("completion_tokens"))
        finish = choice.get("finish_reason") or "stop"
        return Answer(text, data.get("id"), finish if finish in ("stop", "length") else "stop", usage.get("prompt_tokens"), usage.get("completion_tokens"))

    def stream(self, request: Request):
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        self.connections.close()

    def _body(self, request: Request) -> dict[str, Any]:
        return chat_body(request, self.model, self.structured_output)


@dataclass(frozen=True)
class Answer:
    """What a server answered to one chat-completions body."""

    text: str
    id: str | None
    finish_reason: str
    input_tokens: int | None
    output_tokens: int | None


def chat_body(request: Request, model: str, structured_output: StructuredOutput) -> dict[str, Any]:
    """The chat-completions body of a DSPy request: what this engine sends, and what a batch file holds."""
    config = request.config
    settings = {"max_tokens": config.max_tokens, "temperature": config.temperature, "seed": config.seed, "stop": config.stop}
    return _body(_messages(request), settings, config.response_format, model, structured_output)


def plain_body(messages: list[dict[str, str]], settings: dict[str, Any], model: str, structured_output: StructuredOutput) -> dict[str, Any]:
    """The body ``chat_body`` builds from DSPy's request for these text messages and settings, built without the request
    (``rae.lm.direct``): the response format read as DSPy's request reads it, the rest as it is."""
    stop = settings.get("stop")
    plain = {**settings, "stop": [stop] if isinstance(stop, str) else stop}
    return _body(messages, plain, _as_dspy_reads(settings.get("response_format")), model, structured_output)


def _body(messages: list[dict[str, Any]], settings: dict[str, Any], response_format: dict[str, Any] | None, model: str, structured_output: StructuredOutput) -> dict[str, Any]:
    """One body, whichever way its parts came: the keys in one order, unset settings left out."""
    body: dict[str, Any] = {"model": model, "messages": messages}
    for key in ("max_tokens", "temperature", "seed"):
        if settings.get(key) is not None:
            body[key] = settings[key]
    if settings.get("stop"):
        body["stop"] = list(settings["stop"])
    sent_format = _response_format(response_format, structured_output)
    if sent_format is not None:
        body["response_format"] = sent_format
    return body


def _as_dspy_reads(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """A chat-completions response format as DSPy's request holds it: ``text`` is none, a schema's ``json_schema`` wrapper
    is flattened, and the default name "response" dropped."""
    if raw is None or raw.get("type") == "text":
        return None
    if raw.get("type") != "json_schema":
        return {"type": raw.get("type")}
    inner = raw.get("json_schema") or {}
    read = {"type": "json_schema", "schema": inner.get("schema")}
    if inner.get("name") not in (None, "response"):
        read["name"] = inner["name"]
    return read


def _messages(request: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.text is not None:
            messages.append({"role": message.role, "content": message.text})
            continue
        messages.append({"role": message.role, "content": [_part(part) for part in message.parts]})
    return messages


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        if part.url is not None:
            return {"type": "image_url", "image_url": {"url": part.url}}
        data = part.data if part.data is not None else base64.b64encode(part.bytes).decode()
        return {"type": "image_url", "image_url": {"url": f"data:{part.media_type};base64,{data}"}}
    raise lm15.UnsupportedFeatureError(f"OpenAI-compatible servers take text and images, not {type(part).__name__}")


def _response_format(requested: dict[str, Any] | None, mode: StructuredOutput) -> dict[str, Any] | None:
    if requested is None or mode == "none":
        return None
    schema = requested.get("schema") if requested.get("type") == "json_schema" else None
    if mode == "json_schema" and schema is not None:
        return {"type": "json_schema", "json_schema": {"name": requested.get("name", "output"), "schema": schema}}
    if mode == "llama_cpp" and schema is not None:
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def _http_error(url: str, status: int, headers: dict[str, str], payload: bytes) -> lm15.LM15Error:
    try:
        data = json.loads(payload)
        detail = json.dumps(data.get("error", data) if isinstance(data, dict) else data)[:300]
    except ValueError:
        detail = payload[:300].decode("utf-8", "replace")
    message = f"HTTP {status} from {url}: {detail}"
    retry_after = _retry_after(headers.get("retry-after"))
    if status == 429:
        return lm15.RateLimitError(message, provider="server", status=status, retry_after=retry_after)
    if status in (401, 403):
        return lm15.AuthError(message, provider="server", status=status)
    if status in (408, 504):
        return lm15.TimeoutError(message, provider="server", status=status)
    if status >= 500:
        return lm15.ServerError(message, provider="server", status=status, retry_after=retry_after)
    if "context" in detail.lower() and ("length" in detail.lower() or "window" in detail.lower()):
        return lm15.ContextLengthError(message, provider="server", status=status)
    if status == 404:
        return lm15.UnsupportedModelError(message, provider="server", status=status)
    return lm15.InvalidRequestError(message, provider="server", status=status)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

"""An engine for OpenAI-compatible chat-completions servers: vLLM, Ollama, llama.cpp's server, TGI, LM Studio.

It is the default for a model with an ``api_base``, for three reasons measured on such servers:

- DSPy's built-in engines look the model up in a metadata snapshot on every call (capabilities before, price after);
  for a model the snapshot does not know, which is every self-hosted model, each lookup scans the whole snapshot.
  An engine of its own declares its capabilities and is not priced by DSPy (rae prices calls itself).
- DSPy's native engine sends ``max_completion_tokens``, which llama.cpp's server ignores; this engine sends
  ``max_tokens``, which every such server honours.
- Servers disagree on structured output: llama.cpp's server rejects a ``json_schema`` response format but takes a
  schema inside ``json_object``; vLLM and Ollama take ``json_schema``. ``structured_output`` says which to send.

HTTP goes through maintained clients: a pooled ``httpx.Client`` for calls from threads (an optimizer's), and an
``aiohttp.ClientSession`` per event loop for a run's many calls in flight. aiohttp, not httpx's ``AsyncClient``, on
the loop: with many connections open, httpx's pool looks at every connection on every request (see
docs/throughput.md for what that cost). A server that closes a kept-alive connection just as it is reused (the client
sees the peer go, or a reset, before any answer) is sent the request once more, at once, on a new connection. Errors map onto DSPy's lm15 taxonomy, so rae's retries see a 429 (with its Retry-After), a 5xx, a timeout
or a refused connection as transient, and a 401 or an unknown model as final.
"""

import asyncio
import base64
import json
from typing import Any

import aiohttp
import httpx
import orjson
from dspy import lm15
from dspy.lm15 import ImagePart, Request, Response, TextPart, response_from_openai_chat

from rae.config import StructuredOutput

SUPPORTED_PARAMS = frozenset({"temperature", "max_tokens", "response_format", "seed", "stop"})
# What the clients raise when a kept-alive connection was closed by the server as it was reused: the request is sent again.
STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
ASYNC_STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


class ServerEngine:
    """``complete`` (from a thread) and ``acomplete`` (on an event loop) for one server and model."""

    supported_params = SUPPORTED_PARAMS

    def __init__(
        self,
        api_base: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        structured_output: StructuredOutput = "json_object",
        max_connections: int = 512,
    ):
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.model = model
        self.structured_output = structured_output
        self.supports_response_schema = structured_output in ("json_schema", "llama_cpp")
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._client: httpx.Client | None = None
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def complete(self, request: Request) -> Response:
        if self._client is None:
            limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
            self._client = httpx.Client(headers=self.headers, timeout=httpx.Timeout(self.timeout_s), limits=limits)
        body = orjson.dumps(self.body(request))
        try:
            try:
                answer = self._client.post(self.url, content=body)
            except STALE:  # a kept-alive connection the server had just closed: once more, on a new one
                answer = self._client.post(self.url, content=body)
        except httpx.HTTPError as error:
            raise _transport_error(self.url, error) from None
        return self._response(request, answer.status_code, answer.headers, answer.content)

    async def acomplete(self, request: Request) -> Response:
        session = self._session()
        body = orjson.dumps(self.body(request))
        try:
            try:
                status, headers, content = await self._apost(session, body)
            except ASYNC_STALE:  # a kept-alive connection the server had just closed: once more, on a new one
                status, headers, content = await self._apost(session, body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _async_transport_error(self.url, error) from None
        return self._response(request, status, headers, content)

    async def _apost(self, session: aiohttp.ClientSession, body: bytes) -> tuple[int, Any, bytes]:
        async with session.post(self.url, data=body) as answer:
            return answer.status, answer.headers, await answer.read()

    def _session(self) -> aiohttp.ClientSession:
        """This event loop's session (a session belongs to the loop it was made on)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            session = self._sessions[loop] = aiohttp.ClientSession(headers=self.headers, connector=connector, timeout=timeout)
        return session

    def body(self, request: Request) -> dict[str, Any]:
        return chat_body(request, self.model, self.structured_output)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close this event loop's session (a loop's session cannot outlive it)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    def _response(self, request: Request, status: int, headers: Any, content: bytes) -> Response:
        if status != 200:
            raise _http_error(self.url, status, headers, content)
        try:
            return response_from_openai_chat(orjson.loads(content), model=request.model)
        except (ValueError, KeyError, IndexError, TypeError, lm15.LM15Error):
            raise lm15.ServerError(f"{self.url} answered 200 with a body that is not a chat completion", provider="server", status=200) from None


def chat_body(request: Request, model: str, structured_output: StructuredOutput) -> dict[str, Any]:
    """The chat-completions body of a DSPy request: what this engine sends, and what a batch file holds."""
    config = request.config
    body: dict[str, Any] = {"model": model, "messages": chat_messages(request)}
    for key in ("max_tokens", "temperature", "seed"):
        if getattr(config, key) is not None:
            body[key] = getattr(config, key)
    if config.stop:
        body["stop"] = list(config.stop)
    sent_format = _response_format(config.response_format, structured_output)
    if sent_format is not None:
        body["response_format"] = sent_format
    return body


def chat_messages(request: Request) -> list[dict[str, Any]]:
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


def _transport_error(url: str, error: httpx.HTTPError) -> lm15.LM15Error:
    if isinstance(error, httpx.TimeoutException):
        return lm15.TimeoutError(f"{url}: no answer in time ({type(error).__name__})", provider="server")
    if isinstance(error, httpx.ConnectError):
        return lm15.TransportError(f"cannot reach {url} ({type(error).__name__}: {error})", provider="server")
    return lm15.TransportError(f"{url}: {type(error).__name__}: {error}", provider="server")


def _async_transport_error(url: str, error: BaseException) -> lm15.LM15Error:
    if isinstance(error, TimeoutError):
        return lm15.TimeoutError(f"{url}: no answer in time ({type(error).__name__})", provider="server")
    if isinstance(error, aiohttp.ClientConnectorError):
        return lm15.TransportError(f"cannot reach {url} ({type(error).__name__}: {error})", provider="server")
    return lm15.TransportError(f"{url}: {type(error).__name__}: {error}", provider="server")


def _http_error(url: str, status: int, headers: Any, payload: bytes) -> lm15.LM15Error:
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

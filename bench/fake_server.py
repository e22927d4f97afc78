"""An OpenAI-compatible chat-completions server on 127.0.0.1, for the benchmark and the tests.

It answers every request after a fixed latency with a completion that is valid for the request: for the JSON schema in
``response_format`` when there is one, else for the output fields that DSPy's adapter lists in its system prompt. The
label it gives is a hash of the prompt, so answers are deterministic. It can also misbehave on purpose (``faults``):
answer 429 with a Retry-After, 500, time out, or write garbage, to show that a run survives a real server's faults.
It records what arrived (image parts included), so a test can check that the request carried what it should.

Run alone: ``python -m bench.fake_server --latency 0.2`` prints ``http://127.0.0.1:<port>/v1`` and serves.
"""

import argparse
import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \((.*)\)", re.M)


@dataclass(frozen=True)
class Fault:
    """What to do instead of answering: an HTTP status (with Retry-After seconds), a stall, or garbage text."""

    status: int | None = None
    retry_after: float | None = None
    stall_s: float | None = None
    garbage: str | None = None
    echo_credentials: bool = False  # a careless server that quotes the request's Authorization header in its error


FaultPlan = Callable[[int, dict[str, Any]], Fault | None]  # (request number from 0, request body) -> fault or None


@dataclass
class Recorded:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    image_parts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def completion_for(body: dict[str, Any]) -> str:
    """The JSON text a well-behaved model would answer with."""
    messages = body.get("messages", [])
    prompt = json.dumps(messages, sort_keys=True)
    choice = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema")
    if schema:
        return json.dumps(_from_schema(schema, schema, choice))
    system = next((_text(m) for m in messages if m.get("role") == "system"), "")
    output_part = system.split("Your output fields are:")[-1].split("All interactions")[0]
    return json.dumps({name: _from_type(kind, choice, name) for name, kind in FIELD_LINE.findall(output_part)})


def _from_schema(node: dict[str, Any], root: dict[str, Any], choice: int, name: str = "answer") -> Any:
    if "$ref" in node:
        return _from_schema(root["$defs"][node["$ref"].split("/")[-1]], root, choice, name)
    if "enum" in node:
        return node["enum"][choice % len(node["enum"])]
    if "anyOf" in node:
        return _from_schema(node["anyOf"][0], root, choice, name)
    kind = node.get("type")
    if kind == "object":
        return {key: _from_schema(sub, root, choice, key) for key, sub in node.get("properties", {}).items()}
    if kind == "array":
        return [_from_schema(node.get("items", {}), root, choice, name)]
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return _text_for(name)


def _from_type(kind: str, choice: int, name: str) -> Any:
    if kind.startswith("Literal["):
        options = re.findall(r"'([^']*)'", kind)
        return options[choice % len(options)]
    if kind.startswith("list[Requirement"):
        return [{"name": "product type", "value": "the asked-for product", "importance": "must"}]
    if kind.startswith("list["):
        return []
    return _text_for(name)


def _text_for(name: str) -> str:
    """A short text that reads as content and differs from field to field (as a model's answers would)."""
    return f"the {name.replace('_', ' ')} this server writes"


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def _image_parts(body: dict[str, Any]) -> int:
    return sum(
        1
        for message in body.get("messages", [])
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


def build_app(latency_s: float, faults: FaultPlan | None = None, recorded: Recorded | None = None) -> web.Application:
    counter = {"n": 0, "judgments": 0}

    async def stats(_: web.Request) -> web.StreamResponse:
        """How many requests arrived, and how many were judgments (for a test in another process)."""
        return web.json_response({"requests": counter["n"], "judgments": counter["judgments"]})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        number = counter["n"]
        counter["n"] += 1
        counter["judgments"] += "[[ ## product ## ]]" in _text((body.get("messages") or [{}])[-1])
        if recorded is not None:
            with recorded.lock:
                recorded.bodies.append(body)
                recorded.authorizations.append(request.headers.get("Authorization", ""))
                recorded.image_parts += _image_parts(body)
        fault = faults(number, body) if faults else None
        await asyncio.sleep(latency_s)
        if fault is not None:
            if fault.stall_s is not None:
                await asyncio.sleep(fault.stall_s)
            if fault.status is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                message = f"fake server fault {fault.status}"
                if fault.echo_credentials:
                    message += f" for request with Authorization: {request.headers.get('Authorization', '')}"
                error = {"error": {"message": message, "type": "server_error", "code": fault.status}}
                return web.json_response(error, status=fault.status, headers=headers)
        text = fault.garbage if fault is not None and fault.garbage is not None else completion_for(body)
        prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
        return web.json_response(
            {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text) // 4, "total_tokens": prompt_tokens + len(text) // 4},
            }
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_get("/stats", stats)
    return app


class BackgroundApp:
    """An aiohttp application served on 127.0.0.1 from a background thread with its own event loop (for tests);
    ``url`` is its ``/v1`` base once entered."""

    def __init__(self, app: web.Application):
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = ""

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> "BackgroundApp":
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class FakeServer(BackgroundApp):
    """The fake model server in this process; ``recorded`` holds what it was sent."""

    def __init__(self, latency_s: float = 0.0, faults: FaultPlan | None = None):
        self.recorded = Recorded()
        super().__init__(build_app(latency_s, faults, self.recorded))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    async def serve() -> None:
        runner = web.AppRunner(build_app(args.latency), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
        await site.start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}/v1", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()

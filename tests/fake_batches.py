"""A local stand-in for OpenAI's Files and Batches endpoints, as the ``openai`` SDK calls them.

``POST /v1/files`` (multipart: the JSONL and ``purpose=batch``) stores the input; ``POST /v1/batches`` creates a
batch in ``validating``; each ``GET /v1/batches/{id}`` moves it one state on (``in_progress``, ``finalizing``,
``completed``, or ``expired`` for a batch told to expire); ``GET /v1/files/{id}/content`` returns the output or error
lines, one ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`` a request. Answers
are what the benchmark's fake model server would answer (valid for the request's schema). ``fail`` picks requests
that end in the error file, ``garbage`` requests answered with text that does not parse; ``expire_after`` makes a batch expire with only that many requests answered. It also
answers online chat completions at the same base URL, as the real API does.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bench.fake_server import BackgroundApp, completion_for

STATES = ("validating", "in_progress", "finalizing", "completed")


@dataclass
class FakeBatches:
    fail: Callable[[dict[str, Any]], bool] = lambda request: False
    garbage: Callable[[dict[str, Any]], bool] = lambda request: False  # answered 200 with text that is not the JSON asked for
    expire_after: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    online: list[dict[str, Any]] = field(default_factory=list)  # bodies of online chat completions (the same base URL)
    url: str = ""

    def __post_init__(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches/{id}", self._retrieve)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._server = BackgroundApp(app)

    def __enter__(self) -> "FakeBatches":
        self.url = self._server.__enter__().url
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def requests_of(self, batch_id: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.files[self.batches[batch_id]["input_file_id"]].decode().splitlines() if line.strip()]

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = upload.file.read()
        return web.json_response({"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": int(time.time()),
                                  "filename": upload.filename, "purpose": form.get("purpose", "batch"), "status": "processed"})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
                                  "completion_window": body["completion_window"], "status": "validating", "created_at": int(time.time()),
                                  "output_file_id": None, "error_file_id": None, "errors": None,
                                  "request_counts": {"total": len(self.requests_of_input(body["input_file_id"])), "completed": 0, "failed": 0}}
        return web.json_response(self.batches[batch_id])

    def requests_of_input(self, file_id: str) -> list[str]:
        return [line for line in self.files[file_id].decode().splitlines() if line.strip()]

    async def _retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches[request.match_info["id"]]
        if batch["status"] not in ("completed", "expired"):
            nxt = STATES[STATES.index(batch["status"]) + 1]
            if nxt == "completed":
                self._finish(batch)
            else:
                batch["status"] = nxt
        return web.json_response(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        requests = [json.loads(line) for line in self.requests_of_input(batch["input_file_id"])]
        answered = requests if self.expire_after is None else requests[: self.expire_after]
        output, errors = [], []
        for i, entry in enumerate(answered):
            if self.fail(entry):
                errors.append({"id": f"batch_req_{i}", "custom_id": entry["custom_id"], "response": {"status_code": 500, "request_id": f"r{i}", "body": {"error": {"message": "server error"}}}, "error": None})
                continue
            text = "I cannot answer that in JSON." if self.garbage(entry) else completion_for(entry["body"])
            completion = {"id": f"chatcmpl-{i}", "object": "chat.completion", "created": 0, "model": entry["body"]["model"],
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}
            output.append({"id": f"batch_req_{i}", "custom_id": entry["custom_id"], "response": {"status_code": 200, "request_id": f"r{i}", "body": completion}, "error": None})
        batch["status"] = "completed" if self.expire_after is None else "expired"
        batch["request_counts"] = {"total": len(requests), "completed": len(output), "failed": len(errors)}
        if output:
            batch["output_file_id"] = self._file(output)
        if errors:
            batch["error_file_id"] = self._file(errors)

    def _file(self, lines: list[dict[str, Any]]) -> str:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
        return file_id

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.online.append(body)
        text = completion_for(body)
        return web.json_response({"id": "chatcmpl-online", "object": "chat.completion", "created": 0, "model": body["model"],
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}})

    async def _content(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["id"]], content_type="application/jsonl")

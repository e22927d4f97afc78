"""rae's engine for OpenAI-compatible servers, against a real local server: the wire format, and every fault."""

import asyncio
import json
import socket
import threading

import pytest
from dspy import lm15
from dspy.lm15 import Message, Request
from sqlalchemy import select

from bench.fake_server import FakeServer, Fault
from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationAborted, AnnotationRun
from rae.config import ModelSpec
from rae.lm.factory import ModelHandle
from rae.lm.server import ServerEngine
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES
from rae.store.schema import JudgmentRow


def handle_for(server: FakeServer, **spec) -> ModelHandle:
    handle = ModelHandle(ModelSpec(name="openai/served-model", api_base=server.url, timeout_s=2, **spec))
    handle.waits = []

    async def waited(seconds: float) -> None:
        handle.waits.append(seconds)

    handle.call_policy.sleep, handle.call_policy.asleep = handle.waits.append, waited
    return handle


def annotate(handle: ModelHandle, store, tiny, workers: int = 4):
    judging = Judging(Annotator(), CacheThrough(store), handle, handle.sender())
    return AnnotationRun(judging, tiny.catalog, workers=workers, progress=False).run(tiny.pairs())


def test_the_request_carries_max_tokens_the_bare_model_name_and_json_mode(store, tiny):
    with FakeServer() as server:
        summary = annotate(handle_for(server), store, tiny)
        body = server.recorded.bodies[-1]
    assert summary.judged == 12 and summary.total_calls == 18
    assert body["model"] == "served-model" and body["max_tokens"] == 384 and "max_completion_tokens" not in body
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0.0
    assert summary.total.input_tokens > 0  # the server's reported usage reached the store


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("json_schema", {"type": "json_schema"}), ("llama_cpp", {"type": "json_object"}), ("none", None)],
)
def test_structured_output_is_sent_the_way_the_server_takes_it(store, tiny, mode, expected):
    with FakeServer() as server:
        annotate(handle_for(server, structured_output=mode), store, tiny)
        sent = server.recorded.bodies[-1].get("response_format")
    if expected is None:
        assert sent is None
        return
    assert sent["type"] == expected["type"]
    schema = sent["json_schema"]["schema"] if mode == "json_schema" else sent["schema"]
    assert schema["properties"]["label"]["enum"] == ["irrelevant", "acceptable_substitute", "highly_relevant"]


def test_a_run_survives_rate_limits_errors_timeouts_and_garbage_with_the_right_counts(store, tiny):
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def faults(number, body):
        """Per product text: the 1st product gets a 429, the 2nd two 500s, the 3rd a stall, the 4th garbage twice."""
        user = body["messages"][-1]["content"]
        if "[[ ## product ## ]]" not in user:
            return None
        with lock:
            seen[user] = seen.get(user, 0) + 1
            attempt = seen[user]
        if "Red kettle 1.7l" in user and attempt == 1:
            return Fault(status=429, retry_after=1.5)
        if "Blue kettle" in user and attempt <= 2:
            return Fault(status=500)
        if "Red toaster" in user and attempt == 1:
            return Fault(stall_s=3)  # beyond the 2 s timeout
        if "Kettle descaler" in user:
            return Fault(garbage="I'd say it is quite relevant!")
        return None

    with FakeServer(faults=faults) as server:
        handle = handle_for(server)
        summary = annotate(handle, store, tiny, workers=8)
    assert (summary.judged, summary.failed, summary.not_judged, summary.errors) == (11, 1, 0, 0)
    assert summary.spend["judgment"].retries == 1 + 2 + 1  # the 429, two 500s, the timeout
    assert any(1.5 <= wait <= 2.0 for wait in handle.waits)  # the Retry-After was honoured
    with store.session() as session:
        failed = session.scalars(select(JudgmentRow).where(JudgmentRow.status == "failed")).one()
    assert failed.product_id == "p4" and failed.raw_output == "I'd say it is quite relevant!" and failed.attempts == 2


def test_a_server_that_keeps_failing_leaves_its_pairs_for_the_next_run(store, tiny):
    down = {"judging": True}

    def faults(number, body):
        return Fault(status=503) if down["judging"] and "[[ ## product ## ]]" in body["messages"][-1]["content"] else None

    with FakeServer(faults=faults) as server:
        handle = handle_for(server, num_retries=2)
        with pytest.raises(AnnotationAborted, match=r"LMServerError: .*HTTP 503"):
            annotate(handle, store, tiny, workers=1)  # ten pairs in a row fail: the run stops, as a dead server would
        assert len(handle.waits) == 10 * 2  # each of the ten was retried twice first
        down["judging"] = False
        summary = annotate(handle, store, tiny)
    assert summary.judged == 12 and summary.lm_calls["requirements_guidelines"] == 0  # the guidelines were kept


def test_a_bad_key_stops_the_run_at_once(store, tiny):
    with FakeServer(faults=lambda n, body: Fault(status=401)) as server, pytest.raises(AnnotationAborted, match="LMAuthError"):
        annotate(handle_for(server), store, tiny)


def test_an_unreachable_server_is_one_clear_error(store, tiny):
    handle = ModelHandle(ModelSpec(name="openai/nothing-here", api_base="http://127.0.0.1:9/v1", num_retries=1, timeout_s=1))

    async def no_wait(seconds: float) -> None:
        pass

    handle.call_policy.asleep = no_wait
    with pytest.raises(AnnotationAborted, match=r"stopped: LMTransportError: .*cannot reach http://127.0.0.1:9/v1/chat/completions \(ClientConnectorError"):
        annotate(handle, store, tiny, workers=1)


def one_response_per_connection_server() -> tuple[int, threading.Event]:
    """Answers each connection's first request as HTTP/1.1 keep-alive, then closes it without saying so."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "{}"}, "finish_reason": "stop"}]}).encode()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            while len(rest) < length:
                rest += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            connection.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def test_a_kept_alive_connection_the_server_dropped_is_reopened():
    """httpx's pool sees a connection the server closed while idle, and opens another: from threads and on a loop."""
    port, stop = one_response_per_connection_server()
    engine = ServerEngine(f"http://127.0.0.1:{port}/v1", "m", timeout_s=2)
    request = Request(model="openai/m", messages=(Message.user("hi"),))
    try:
        for _ in range(3):
            assert engine.complete(request).text == "{}"

        async def three() -> list[str]:
            answers = [(await engine.acomplete(request)).text for _ in range(3)]
            await engine.aclose()
            return answers

        assert asyncio.run(three()) == ["{}"] * 3
    finally:
        engine.close()
        stop.set()


def test_an_http_status_maps_to_dspys_error_taxonomy():
    import httpx

    from rae.lm.server import _http_error

    headers = httpx.Headers({"retry-after": "7"})
    assert isinstance(_http_error("u", 429, headers, b"{}"), lm15.RateLimitError)
    assert _http_error("u", 429, headers, b"{}").retry_after == 7.0
    assert isinstance(_http_error("u", 503, httpx.Headers(), b"down"), lm15.ServerError)
    assert isinstance(_http_error("u", 401, httpx.Headers(), b"{}"), lm15.AuthError)
    assert isinstance(_http_error("u", 400, httpx.Headers(), b'{"error": "maximum context length is 4096"}'), lm15.ContextLengthError)
    assert isinstance(_http_error("u", 404, httpx.Headers(), b"{}"), lm15.UnsupportedModelError)


@pytest.mark.parametrize("mode", ["json_object", "json_schema", "llama_cpp", "none"])
def test_a_call_from_a_thread_and_one_from_the_loop_send_the_same_request(store, mode):
    """An optimizer calls the program from threads, a run from its event loop: both send the server the same body and
    share one store key, so what one paid the other reads."""
    inputs = {"query": "red kettle", "guidelines": GENERIC_GUIDELINES.render(), "product": "<product>A red kettle, 1.7 l</product>"}
    with FakeServer() as server:
        handle = handle_for(server, structured_output=mode)
        judging = Judging(Annotator(), CacheThrough(store), handle, handle.sender())
        with judging.context():
            from_thread = judging.program.judge(**inputs)

            async def from_loop():
                return await judging.program.judge.acall(**inputs)

            on_loop = asyncio.run(from_loop())
            judging.calls.counted()
        bodies = list(server.recorded.bodies)
        second = Judging(Annotator(), CacheThrough(store), handle, handle.sender())
        with second.context():
            asyncio.run(second.program.judge.acall(**inputs))
    assert from_thread.label == on_loop.label
    assert len(bodies) == 1  # the loop's call found the thread's answer: the same request, the same key
    assert len(server.recorded.bodies) == 1

"""rae's HTTP/1.1 connections to a model server (``rae.lm.connections``), against a raw socket server that answers
each request with scripted bytes: kept-alive connections reused, every way an answer can be framed, and every way a
server can fail."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from dspy import lm15

from rae.lm.connections import KeepAliveConnections

OK = b'{"ok": true}'


def framed(body: bytes = OK, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Scripted:
    """Answers request n (counted over all connections) with ``answer(n)``: bytes to send, then whether to close."""

    def __init__(self, answer: Callable[[int], tuple[bytes, bool]]):
        self.answer = answer
        self.accepted = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1/chat/completions"

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            threading.Thread(target=self.converse, args=(connection,), daemon=True).start()
        self.listener.close()

    def converse(self, connection: socket.socket) -> None:
        pending = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in pending:
                    data = connection.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, rest = pending.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                pending = rest[length:]
                reply, close = self.answer(len(self.requests) - 1)
                connection.sendall(reply)
                if close:
                    return


@contextmanager
def scripted(answer: Callable[[int], tuple[bytes, bool]]) -> Iterator[Scripted]:
    server = Scripted(answer)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join()


def connections_to(server: Scripted, timeout_s: float = 2) -> KeepAliveConnections:
    return KeepAliveConnections(server.url, {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}, timeout_s)


def test_one_thread_keeps_one_connection_and_sends_a_well_formed_request():
    with scripted(lambda n: (framed(), False)) as server:
        connections = connections_to(server)
        for _ in range(5):
            assert connections.post(b'{"a": 1}') == (200, {"content-type": "application/json", "content-length": str(len(OK))}, OK)
        connections.close()
    assert server.accepted == 1 and len(server.requests) == 5
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1" and body == b'{"a": 1}'
    assert {b"Content-Length: 8", b"Content-Type: application/json", b"Authorization: Bearer sk-test"} <= set(lines)
    assert any(line.startswith(b"Host: 127.0.0.1:") for line in lines)


def test_threads_have_connections_of_their_own():
    with scripted(lambda n: (framed(), False)) as server:
        connections = connections_to(server)
        workers = [threading.Thread(target=lambda: [connections.post(b"{}") for _ in range(3)]) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        connections.close()
    assert server.accepted == 4 and len(server.requests) == 12


@pytest.mark.parametrize(
    ("reply", "close"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ok\"\r\n7\r\n: true}\r\n0\r\n\r\n", False),
        (framed(extra=b"Connection: close\r\n"), True),
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + OK, True),  # the body ends with the connection
        (b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\n" + OK, True),
    ],
    ids=["chunked", "connection-close", "read-to-close", "http-1.0"],
)
def test_every_framing_of_an_answer_is_read_whole(reply, close):
    with scripted(lambda n: (reply, close)) as server:
        connections = connections_to(server)
        for _ in range(2):
            status, _, payload = connections.post(b"{}")
            assert (status, payload) == (200, OK)
        connections.close()
    assert server.accepted == (2 if close else 1)


def test_an_error_status_comes_back_with_its_headers_and_body():
    reply = b'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 17\r\n\r\n{"error": "slow"}'
    with scripted(lambda n: (reply, False)) as server:
        status, headers, payload = connections_to(server).post(b"{}")
    assert (status, headers["retry-after"], payload) == (429, "3", b'{"error": "slow"}')


def test_an_idle_connection_the_server_closed_is_reopened_and_the_request_sent_once_more():
    with scripted(lambda n: (framed(), True)) as server:  # the server closes after each answer, without saying so
        connections = connections_to(server)
        for _ in range(3):
            assert connections.post(b"{}")[2] == OK
    assert server.accepted == 3 and len(server.requests) == 3


def test_an_answer_cut_off_midway_is_a_transport_error_and_is_not_sent_again():
    with scripted(lambda n: (framed()[:-5], True)) as server:
        connections = connections_to(server)
        with pytest.raises(lm15.TransportError, match="closed the connection in the middle of its answer"):
            connections.post(b"{}")
    assert len(server.requests) == 1


def test_garbage_is_a_transport_error_in_one_line():
    with scripted(lambda n: (b"SSH-2.0-OpenSSH_9.2\r\n\r\nnot http at all", True)) as server, pytest.raises(lm15.TransportError, match="not HTTP") as raised:
        connections_to(server).post(b"{}")
    assert "\n" not in str(raised.value)


def test_headers_without_an_end_are_refused():
    filler = b"HTTP/1.1 200 OK\r\nX-Filler: " + b"a" * 200_000
    with scripted(lambda n: (filler, True)) as server, pytest.raises(lm15.TransportError, match="no end of headers"):
        connections_to(server).post(b"{}")


def test_a_server_that_does_not_answer_is_a_timeout():
    with scripted(lambda n: (b"", False)) as server, pytest.raises(lm15.TimeoutError, match=r"did not answer within 0.3s"):
        connections_to(server, timeout_s=0.3).post(b"{}")


def test_nothing_listening_is_one_clear_error():
    with pytest.raises(lm15.TransportError, match=r"cannot reach http://127.0.0.1:9/v1/chat/completions \(ConnectionRefusedError"):
        KeepAliveConnections("http://127.0.0.1:9/v1/chat/completions", {}, 1).post(b"{}")


def test_not_an_http_url_is_refused():
    with pytest.raises(lm15.ConfigurationError, match="not an http"):
        KeepAliveConnections("ftp://example.com/v1", {}, 1)

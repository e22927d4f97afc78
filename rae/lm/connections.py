"""Kept-alive HTTP/1.1 connections to a model server: one per worker thread, each answer read by llhttp.

At 64 workers against a server that answers in 200 ms, rae's throughput is bound by its own CPU per call, and the
HTTP exchange was a large part of it: through ``http.client`` a POST and its answer cost 244-317 us of CPU (a
buffered file object per response, the headers parsed by the ``email`` package), against 66-102 us here (the same
body, connection and fake server: ``python -m rae.bench.http_exchange``). The HTTP is parsed by llhttp, Node.js's parser, through
``httptools`` (uvicorn's binding): status, headers, a ``Content-Length`` or chunked body, whether the connection stays
open. What is left here is the socket: connect (TLS for https), send the request in one write, and feed the parser
what arrives until its message is complete.

A connection per thread needs no shared pool and no lock. A kept-alive connection that the server closed while idle
(nothing of an answer arrived) is reopened and the request sent again: the server never saw it.
"""

import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import httptools
from dspy import lm15

RECEIVE_BYTES = 65536
MAX_HEAD_BYTES = 65536  # an answer's status line and headers; more is not a model server talking


class ServerClosed(ConnectionError):
    """The server closed the connection before any of the answer arrived (an idle kept-alive connection it dropped)."""


class _Answer:
    """The parser's callbacks: what arrived of one answer."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.keep_alive = False
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.head_complete = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_complete = True
        self.keep_alive = self.parser.should_keep_alive()  # read now: once the message is complete, the parser resets

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """One HTTP/1.1 connection, kept open between requests."""

    def __init__(self, host: str, port: int, timeout_s: float, tls: ssl.SSLContext | None):
        sock = socket.create_connection((host, port), timeout=timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls.wrap_socket(sock, server_hostname=host) if tls is not None else sock
        self.reusable = True

    def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one request; its answer's status, headers (names lower-cased) and body."""
        self.sock.sendall(request)  # no "Expect: 100-continue": the answer is the final one
        answer, received = _Answer(), 0
        while not answer.complete:
            data = self.sock.recv(RECEIVE_BYTES)
            if not data:
                if answer.head_complete and not _length_known(answer.headers):  # a body that ends with the connection
                    answer.keep_alive = False
                    break
                if received == 0:
                    raise ServerClosed("the server closed the connection")
                raise lm15.TransportError("the server closed the connection in the middle of its answer")
            received += len(data)
            answer.parser.feed_data(data)
            if not answer.head_complete and received > MAX_HEAD_BYTES:
                raise lm15.TransportError(f"the server's answer has no end of headers in its first {received} bytes")
        status = answer.parser.get_status_code()
        answer.parser = None  # the parser and its callbacks refer to each other: let go at once
        self.reusable = answer.keep_alive
        return status, answer.headers, b"".join(answer.body)

    def close(self) -> None:
        self.sock.close()


class KeepAliveConnections:
    """POSTs to one URL, each worker thread on its own kept-alive connection."""

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise lm15.ConfigurationError(f"not an http(s) URL: {url}")
        secure = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if secure else 80)
        self.url, self.timeout_s = url, timeout_s
        self.tls = ssl.create_default_context() if secure else None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host += f":{parts.port}"
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity", *(f"{k}: {v}" for k, v in headers.items())]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        request = b"%s%d\r\n\r\n%s" % (self._head, len(body), body)
        for attempt in (1, 2):
            connection, reused = None, False
            try:
                connection, reused = self._connection()
                answer = connection.exchange(request)
            except (OSError, httptools.HttpParserError, lm15.TransportError) as exc:
                self._drop(connection)
                if isinstance(exc, ServerClosed | BrokenPipeError | ConnectionResetError) and reused and attempt == 1:
                    continue  # the server closed an idle kept-alive connection: open a new one and send again
                raise self._error(exc) from None
            if not connection.reusable:
                self._drop(connection)
            return answer
        raise AssertionError("unreachable")

    def _error(self, exc: BaseException) -> lm15.LM15Error:
        """What went wrong on the connection, as DSPy's error for it (a timeout, or a transport error), in one line."""
        if isinstance(exc, TimeoutError):
            return lm15.TimeoutError(f"{self.url} did not answer within {self.timeout_s:g}s", provider="server")
        if isinstance(exc, ServerClosed | BrokenPipeError | ConnectionResetError):
            return lm15.TransportError(f"{self.url} closed the connection ({type(exc).__name__})")
        if isinstance(exc, httptools.HttpParserError):
            return lm15.TransportError(f"{self.url} answered with something that is not HTTP ({exc})")
        if isinstance(exc, lm15.TransportError):
            return lm15.TransportError(f"{self.url}: {exc}")
        return lm15.TransportError(f"cannot reach {self.url} ({type(exc).__name__}: {exc})")

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()

    def _connection(self) -> tuple[Connection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        connection = Connection(self.host, self.port, self.timeout_s, self.tls)
        self._local.connection = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _drop(self, connection: Connection | None) -> None:
        if connection is None:  # it did not even open
            return
        connection.close()
        self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)


def _length_known(headers: dict[str, Any]) -> bool:
    return "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()

"""The CPU of one chat-completions exchange (the standard library's ``http.client`` against rae's connections), and
of one thread waking another.

One thread posts the same body (a 4.6 KB prompt, as a judgment's) over one kept-alive connection to the fake server,
many times, each way in turn, and prints the CPU per request. Why it matters: at 64 workers rae's throughput is bound
by its own CPU per call, and this exchange was a large part of it (``rae.lm.connections``). Then two threads pass an
event back and forth: what each wake-up of a waiting thread costs on this machine, the price of every context switch
the benchmark counts per pair.

    python -m rae.bench.http_exchange --requests 2000 --rounds 2
"""

import argparse
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from rae.bench.__main__ import server_process
from rae.lm.connections import KeepAliveConnections

BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "system", "content": "x" * 3000}, {"role": "user", "content": "y" * 1500}], "response_format": {"type": "json_object"}}
).encode()
HEADERS = {"Content-Type": "application/json"}


def standard_library(url: str) -> Callable[[], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def post() -> bytes:
        connection.request("POST", parts.path, body=BODY, headers=HEADERS)
        response = connection.getresponse()
        _headers = {k.lower(): v for k, v in response.getheaders()}  # as rae read them before
        return response.read()

    return post


def rae_connections(url: str) -> Callable[[], bytes]:
    connections = KeepAliveConnections(url, HEADERS, 30)
    return lambda: connections.post(BODY)[2]


def cpu_us_per_request(post: Callable[[], bytes], requests: int) -> float:
    for _ in range(100):  # the connection open, the code paths warm
        post()
    started = time.process_time()
    for _ in range(requests):
        post()
    return 1e6 * (time.process_time() - started) / requests


def thread_round_trip_us(trips: int) -> float:
    """CPU per round trip of two threads waking each other with events (two wake-ups)."""
    ping, pong = threading.Event(), threading.Event()

    def answer() -> None:
        for _ in range(trips):
            ping.wait()
            ping.clear()
            pong.set()

    other = threading.Thread(target=answer)
    other.start()
    started = time.process_time()
    for _ in range(trips):
        ping.set()
        pong.wait()
        pong.clear()
    other.join()
    return 1e6 * (time.process_time() - started) / trips


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rae.bench.http_exchange", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.0005)
    args = parser.parse_args()
    ways = {"http.client": standard_library, "rae.lm.connections": rae_connections}
    measured: dict[str, list[float]] = {name: [] for name in ways}
    with server_process(args.latency) as (server, _pid):
        url = server.url.rstrip("/") + "/chat/completions"
        for _ in range(args.rounds):
            for name, way in ways.items():
                measured[name].append(cpu_us_per_request(way(url), args.requests))
    for name, values in measured.items():
        print(f"{name:20} {statistics.median(values):6.0f} us of CPU a request (median of {args.rounds}: {', '.join(f'{v:.0f}' for v in values)})")
    trips = [thread_round_trip_us(args.requests * 5) for _ in range(args.rounds)]
    print(f"{'thread round trip':20} {statistics.median(trips):6.0f} us of CPU for two wake-ups (median of {args.rounds}: {', '.join(f'{v:.0f}' for v in trips)})")


if __name__ == "__main__":
    main()

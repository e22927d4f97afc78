"""The embedded model's time per judgment by thread count, on an idle machine and beside a busy process.

llama.cpp's threads meet at a barrier after every step of every layer; when another process takes one of the cores
they run on, each barrier waits for a thread the scheduler has put aside, and a judgment can take many times as long.
This measures that: the judge (rae's program, through DSPy, with the embedded model's adapter and grammar) judges one
query's products with 1..N threads, alone and beside a process that keeps one core busy. Each figure is the median
seconds per judgment; the first judgment (the model's load, the shared prompt prefix) is not counted.

    python -m bench.embedded_threads --threads 1,2 --judgments 8
"""

import argparse
import json
import multiprocessing
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dspy

from rae.config import ModelSpec
from rae.datasets.bundled import esci_us
from rae.lm.factory import ModelHandle
from rae.programs.guidelines import GENERIC_GUIDELINES
from rae.programs.judge import RelevanceJudge
from rae.programs.product_text import product_text


class TimedEngine:
    """The model's engine, timing each call."""

    def __init__(self, inner: Any):
        self.inner, self.seconds = inner, []
        self.supports_response_schema = inner.supports_response_schema
        self.supported_params = inner.supported_params

    def complete(self, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.inner.complete(request)
        finally:
            self.seconds.append(time.perf_counter() - started)


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


@contextmanager
def busy_core(busy: bool) -> Iterator[None]:
    """Another process keeping one core busy for the length of the block (or nothing)."""
    if not busy:
        yield
        return
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=_spin, args=(stop,))
    process.start()
    try:
        yield
    finally:
        stop.set()
        process.join()


def seconds_per_judgment(threads: int, judgments: int, busy: bool) -> dict[str, Any]:
    data = esci_us()
    pairs = data.pairs("dev", queries=1, per_query=judgments + 1)
    handle = ModelHandle(ModelSpec(n_threads=threads))
    sender = handle.sender()
    engine = TimedEngine(sender)
    lm = dspy.LM(handle.spec.name, engine=engine, temperature=0.0, max_tokens=handle.spec.max_tokens, cache=False, num_retries=0)
    judge = RelevanceJudge()
    with dspy.context(lm=lm, adapter=handle.adapter()):
        first, *rest = pairs
        judge(query=first.query, guidelines=GENERIC_GUIDELINES.render(), product=product_text(data.catalog[first.product_id]))
        with busy_core(busy):
            for pair in rest:
                judge(query=pair.query, guidelines=GENERIC_GUIDELINES.render(), product=product_text(data.catalog[pair.product_id]))
    sender.close()
    times = engine.seconds[1:]
    return {"threads": threads, "busy_process": busy, "median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2), "judgments": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded_threads", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--judgments", type=int, default=8)
    args = parser.parse_args()
    rows = [seconds_per_judgment(t, args.judgments, busy) for t in map(int, args.threads.split(",")) for busy in (False, True)]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

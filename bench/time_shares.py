"""Where a judgment's time goes at many calls in flight: the server, rae's store engine, and DSPy around it.

Each judgment step is timed three ways at once, by wrapping public methods of one run's objects (nothing private):
the whole step (``Judging.judgment``: DSPy's module, adapter and ``dspy.LM``, and everything under them), the store's
engine (``StoredCalls.acomplete``: the key, the claim with its reservation, the call, what follows), and the sender
(``ServerEngine.acomplete``: the HTTP round trip to the server, which answers after its latency). Then:

- the server's share: the sender's time (its latency plus the loop's delay in reading the answer);
- rae's own: the store engine's time minus the sender's (the key, the claim, waiting for the gateway);
- DSPy's: the step's time minus the store engine's (the adapter rendering and parsing, ``BaseLM.acall``'s hops to a
  thread to prepare the request and to price the answer, the module).

Per step there is one call (the fake server's answers are content), so the three add up per pair.
"""

import statistics
import time
from pathlib import Path
from typing import Any

from bench.workloads import Server, bench_pairs, fresh_store
from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.programs.annotator import Annotator


def time_shares(server: Server, workers: int, n_pairs: int, directory: Path) -> dict[str, Any]:
    pairs, catalog = bench_pairs(n_pairs)
    handle = server.handle()
    sender = handle.sender()
    judging = Judging(Annotator(guidelines="generic"), CacheThrough(fresh_store(directory)), handle, sender)
    timings: dict[str, list[float]] = {"step": [], "store_engine": [], "sender": [], "claim": [], "transaction": []}
    judging.judgment = _timed(judging.judgment, timings["step"])
    judging.calls.acomplete = _timed(judging.calls.acomplete, timings["store_engine"])
    sender.acomplete = _timed(sender.acomplete, timings["sender"])
    gateway = judging.executor.gateway
    gateway.read_or_claim = _timed(gateway.read_or_claim, timings["claim"])
    gateway.store.exchange = _timed_sync(gateway.store.exchange, timings["transaction"])
    started = time.perf_counter()
    AnnotationRun(judging, catalog, workers=workers, progress=False).run(pairs)
    wall = time.perf_counter() - started
    judging.executor.close()
    mean = {name: 1000 * statistics.fmean(values) for name, values in timings.items() if values}
    return {
        "workers": workers,
        "pairs": n_pairs,
        "pairs_per_s": round(n_pairs / wall, 1),
        "mean_ms_per_judgment": {
            "server": round(mean["sender"], 1),
            "rae_store_engine_beyond_the_server": round(mean["store_engine"] - mean["sender"], 1),
            "dspy_beyond_the_store_engine": round(mean["step"] - mean["store_engine"], 1),
            "whole_step": round(mean["step"], 1),
        },
        "rae_store_engine_detail_ms": {
            "claim_with_its_reservation": round(mean["claim"], 1),
            "one_store_transaction": round(mean["transaction"], 1),
            "transactions": len(timings["transaction"]),
        },
        "server_latency_ms": 1000 * server.latency_s,
    }


def _timed(method: Any, into: list[float]) -> Any:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    return timed


def _timed_sync(method: Any, into: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    return timed

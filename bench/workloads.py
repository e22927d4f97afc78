"""The benchmark's measurements, each a function that returns plain numbers.

Pairs are real queries of the bundled set with catalog products (as many as asked for, spread over the queries), so
prompts have a realistic length. Every measurement starts from an empty store unless it is about the store.
"""

import os
import resource
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dspy
from sqlalchemy import insert

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.config import ModelSpec
from rae.datasets.bundled import esci_us
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES
from rae.programs.judge import RelevanceJudge
from rae.programs.product_text import product_text
from rae.store.schema import LMCallRow
from rae.store.store import Store


@dataclass(frozen=True)
class Server:
    """A model server to measure against: ``api_base`` and the latency it answers with."""

    url: str
    latency_s: float

    def handle(self) -> ModelHandle:
        return ModelHandle(ModelSpec(name="openai/bench", api_base=self.url, num_retries=2, timeout_s=30))


def bench_pairs(n: int) -> tuple[list[Pair], Catalog]:
    """``n`` distinct pairs: each query of the bundled set with products of the catalog, in turn."""
    data = esci_us()
    queries = sorted({(j.query_id, j.query) for j in data.judgments})
    products = sorted(data.catalog)
    per_query = -(-n // len(queries))
    pairs = [Pair(qid, text, products[(i * 997 + j) % len(products)]) for i, (qid, text) in enumerate(queries) for j in range(per_query)]
    return pairs[:n], data.catalog


def fresh_store(directory: Path) -> Store:
    return Store(f"sqlite:///{directory / (uuid.uuid4().hex + '.db')}")


def pace(n_pairs: int, wall_s: float, ideal: float) -> dict[str, Any]:
    """How fast a run went, and as a share of its ideal (every worker always waiting on the server: workers / latency)."""
    return {
        "pairs": n_pairs,
        "seconds": round(wall_s, 2),
        "pairs_per_s": round(n_pairs / wall_s, 1),
        "ideal_pairs_per_s": round(ideal, 1),
        "share_of_ideal": round(n_pairs / wall_s / ideal, 3),
    }


def annotation_throughput(server: Server, workers: int, n_pairs: int, directory: Path, guidelines: str = "generic") -> dict[str, Any]:
    """Pairs per second and framework CPU per pair of one annotation run from an empty store."""
    pairs, catalog = bench_pairs(n_pairs)
    handle = server.handle()
    judging = Judging(Annotator(guidelines=guidelines), CacheThrough(fresh_store(directory)), handle, handle.sender())
    _ = handle.price  # resolved once per model, before the clock starts
    before, cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    summary = AnnotationRun(judging, catalog, workers=workers, progress=False).run(pairs)
    wall, cpu, after = time.perf_counter() - wall, time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF)
    judging.executor.close()
    return {
        "workers": workers,
        **pace(n_pairs, wall, ideal=workers / server.latency_s),
        "framework_cpu_ms_per_pair": round(1000 * cpu / n_pairs, 2),
        # Threads handing work to each other (DSPy's two hops a call, the store's thread): each wake-up costs CPU.
        "context_switches_per_pair": {
            "voluntary": round((after.ru_nvcsw - before.ru_nvcsw) / n_pairs, 1),
            "involuntary": round((after.ru_nivcsw - before.ru_nivcsw) / n_pairs, 1),
        },
        "lm_calls": summary.total_calls,
        "failed_or_not_judged": summary.failed + summary.not_judged,
    }


def naive_run(server: Server, n_pairs: int) -> dict[str, Any]:
    """The same judge called one pair after another with plain DSPy: no workers, no store."""
    pairs, catalog = bench_pairs(n_pairs)
    judge = RelevanceJudge()
    guidelines = GENERIC_GUIDELINES.render()
    handle = server.handle()
    lm = dspy.LM(handle.spec.name, engine=handle.sender(), temperature=0.0, max_tokens=handle.spec.max_tokens, cache=False, num_retries=0)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        started = time.perf_counter()
        for pair in pairs:
            judge(query=pair.query, guidelines=guidelines, product=product_text(catalog[pair.product_id]))
        seconds = time.perf_counter() - started
    return {"pairs": n_pairs, "seconds": round(seconds, 1), "pairs_per_s": round(n_pairs / seconds, 2)}


def second_engine_cost(server: Server, directory: Path, n_pairs: int = 1000, new_share: float = 0.1) -> dict[str, Any]:
    """Two engine configurations that share most of their pairs: the second pays for its new pairs only."""
    pairs, catalog = bench_pairs(int(n_pairs * (1 + new_share)))
    first, second = pairs[:n_pairs], pairs[int(n_pairs * new_share) :]
    handle = server.handle()
    judging = Judging(Annotator(guidelines="generic"), CacheThrough(fresh_store(directory)), handle, handle.sender())
    a = AnnotationRun(judging, catalog, workers=64, progress=False).run(first)
    b = AnnotationRun(judging, catalog, workers=64, progress=False).run(second)
    new_pairs = len(set(second) - set(first))
    return {
        "first_engine": {"pairs": len(first), "lm_calls": a.total_calls},
        "second_engine": {"pairs": len(second), "new_pairs": new_pairs, "lm_calls": b.total_calls, "from_store": b.from_store},
        "second_engine_paid_exactly_its_new_pairs": b.total_calls == new_pairs,
    }


def embedded_prefix_ordering(directory: Path, queries: int = 3, per_query: int = 8) -> dict[str, Any]:
    """The embedded model's pairs per minute, pairs in query order (shared prefixes) and interleaved across queries."""
    data = esci_us()
    chosen = data.pairs("dev", queries=queries, per_query=per_query)
    interleaved = [p for group in zip(*[[p for p in chosen if p.query_id == q] for q in dict.fromkeys(p.query_id for p in chosen)], strict=False) for p in group]
    handle = ModelHandle(ModelSpec())
    sender = handle.sender()
    results = {}
    for name, order, ordered in (("query_order", chosen, True), ("interleaved", interleaved, False)):
        judging = Judging(Annotator(guidelines="generic"), CacheThrough(fresh_store(directory)), handle, sender)
        started = time.perf_counter()
        AnnotationRun(judging, data.catalog, workers=1, progress=False, order_by_query=ordered).run(order)
        seconds = time.perf_counter() - started
        results[name] = {"pairs": len(order), "seconds": round(seconds, 1), "pairs_per_minute": round(60 * len(order) / seconds, 1)}
    results["speedup_from_ordering"] = round(results["query_order"]["pairs_per_minute"] / results["interleaved"]["pairs_per_minute"], 2)
    return results


def store_lookups(directory: Path, rows: int = 1_000_000, probes: int = 2000) -> dict[str, Any]:
    """Lookup time in a store holding ``rows`` stored answers."""
    store = fresh_store(directory)
    fingerprints = []
    started = time.perf_counter()
    batch = 20_000
    now = datetime.now(UTC)
    with store.engine.begin() as connection:
        for start in range(0, rows, batch):
            values = []
            for i in range(start, min(rows, start + batch)):
                fingerprint = f"{i:064x}"
                values.append({"fingerprint": fingerprint, "model_id": "m", "stage": "judgment", "request": None,
                               "text": '{"reasoning": "r", "label": "irrelevant"}', "finish_reason": "stop", "retries": 0, "created_at": now})
            connection.execute(insert(LMCallRow), values)
            fingerprints.extend(v["fingerprint"] for v in values[::97])
    filled = time.perf_counter() - started
    probe = (fingerprints * (probes // len(fingerprints) + 1))[:probes]
    started = time.perf_counter()
    for fingerprint in probe:
        store.get(LMCallRow, fingerprint)
    one = (time.perf_counter() - started) / probes
    started = time.perf_counter()
    found = store.get_many(LMCallRow, probe[:1000])
    many = time.perf_counter() - started
    size = os.path.getsize(make_path(store))
    return {
        "rows": rows,
        "fill_seconds": round(filled, 1),
        "lookup_ms": round(1000 * one, 3),
        "lookup_1000_at_once_ms": round(1000 * many, 1),
        "found": len(found),
        "database_mib": round(size / 2**20, 1),
    }


def make_path(store: Store) -> str:
    return store.engine.url.database


def peak_memory_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def temporary_directory() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="rae-bench-")

"""An engine's results for a set of queries, and the query-product pairs they make for the judge."""

import time
from dataclasses import dataclass

from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair, Query
from rae.retrieve.base import EngineError, SearchEngine

Rankings = dict[str, list[str]]  # query id -> product ids, best first


@dataclass(frozen=True)
class Retrieval:
    """One engine's top k for every query, and how long retrieving took."""

    name: str
    rankings: Rankings
    seconds: float


def retrieve(engine: SearchEngine, queries: list[Query], k: int) -> tuple[Rankings, float]:
    """Each query's top k (duplicates dropped, the engine's order kept), and the seconds retrieval took."""
    started = time.perf_counter()
    rankings = {q.query_id: list(dict.fromkeys(engine.search(q, k)))[:k] for q in queries}
    return rankings, round(time.perf_counter() - started, 3)


def pairs_of(queries: list[Query], rankings: Rankings) -> list[Pair]:
    return [Pair(q.query_id, q.text, p) for q in queries for p in rankings[q.query_id]]


def retrieve_all(engines: dict[str, SearchEngine], queries: list[Query], k: int, catalog: Catalog) -> list[Retrieval]:
    """Every engine's results, retrieved once; an engine that returns a product the catalog lacks is an error (the
    judge could not read it)."""
    retrievals = []
    for name, engine in engines.items():
        rankings, seconds = retrieve(engine, queries, k)
        unknown = sorted({p for products in rankings.values() for p in products if p not in catalog})
        if unknown:
            raise EngineError(f"engine {name} returned products that are not in the catalog, e.g. {', '.join(unknown[:3])}")
        retrievals.append(Retrieval(name, rankings, seconds))
    return retrievals


def union_of_pairs(queries: list[Query], retrievals: list[Retrieval]) -> list[Pair]:
    """The pairs any engine returned, each once, in engine order."""
    return list(dict.fromkeys(p for r in retrievals for p in pairs_of(queries, r.rankings)))

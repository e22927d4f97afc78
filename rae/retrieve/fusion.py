"""A hybrid of engines by reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).

A product's fused score is the sum over engines of weight / (k + its rank there); k = 60 damps the top ranks so that
no single engine dominates, and an engine's weight (default 1) says how much its ranking counts. It needs only ranks, so it fuses engines whose scores are not comparable (BM25 and cosine).
"""

from rae.datasets.records import Query
from rae.retrieve.base import SearchEngine


class FusionEngine:
    def __init__(self, engines: list[SearchEngine], k: float = 60, depth: int = 100, weights: list[float] | None = None):
        self.engines, self.k, self.depth = engines, k, depth
        self.weights = weights or [1.0] * len(engines)

    def search(self, query: Query, k: int) -> list[str]:
        scores: dict[str, float] = {}
        for engine, weight in zip(self.engines, self.weights, strict=True):
            for rank, product_id in enumerate(engine.search(query, max(k, self.depth)), start=1):
                scores[product_id] = scores.get(product_id, 0.0) + weight / (self.k + rank)
        return sorted(scores, key=lambda p: (-scores[p], p))[:k]

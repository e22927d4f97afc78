"""BM25 over the catalog with bm25s: one index per field, scores summed with the configured weights.

Scoring each field on its own (rather than one index over concatenated text) keeps a long description from drowning
a title match, and makes a field's weight mean what it says; it is how a multi-field match works in OpenSearch.
"""

import bm25s
import numpy as np

from rae.config import BM25Spec
from rae.datasets.catalog import Catalog
from rae.datasets.records import Product, Query


def field_text(product: Product, field: str) -> str:
    value = getattr(product, field)
    return " ".join(value) if isinstance(value, tuple) else str(value or "")


class BM25Engine:
    def __init__(self, catalog: Catalog, spec: BM25Spec):
        self.ids = sorted(catalog)
        self.weights = {field: weight for field, weight in spec.fields.items() if weight}
        self.indexes = {}
        for field in self.weights:
            tokens = bm25s.tokenize([field_text(catalog[i], field) for i in self.ids], stopwords="en", show_progress=False)
            if not tokens.vocab:
                continue  # no product has text in this field: nothing to match
            index = bm25s.BM25(k1=spec.k1, b=spec.b)
            index.index(tokens, show_progress=False)
            self.indexes[field] = index

    def search(self, query: Query, k: int) -> list[str]:
        tokens = bm25s.tokenize(query.text, stopwords="en", return_ids=False, show_progress=False)[0]
        if not tokens:
            return []
        scores = sum(self.weights[f] * index.get_scores(tokens) for f, index in self.indexes.items())
        top = np.argsort(-scores, kind="stable")[:k]
        return [self.ids[i] for i in top if scores[i] > 0]

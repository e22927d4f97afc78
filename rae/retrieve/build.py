"""Build search engines by name from the settings: the built-in ones and a team's own."""

from pathlib import Path

from rae.config import BM25Spec, DenseSpec, EngineSpec, FusionSpec, HttpSpec, SearchClusterSpec, SolrSpec, TrecSpec
from rae.datasets.catalog import Catalog
from rae.retrieve.base import EngineError, SearchEngine
from rae.retrieve.bm25 import BM25Engine
from rae.retrieve.clusters import SearchClusterEngine, SolrEngine
from rae.retrieve.dense import DenseEngine, dense_available
from rae.retrieve.fusion import FusionEngine
from rae.retrieve.http import HttpEngine
from rae.retrieve.trec import TrecRunEngine

DEFAULT_ENGINES = ("bm25-title", "bm25-title-brand", "bm25-full")


def default_engine_names() -> list[str]:
    """The engines ``rae evaluate`` compares when none are named: the BM25 configurations, and the hybrid when the
    dense extra is installed."""
    return [*DEFAULT_ENGINES, "hybrid"] if dense_available() else list(DEFAULT_ENGINES)


def build_engines(names: list[str], specs: dict[str, EngineSpec], catalog: Catalog, cache_dir: Path) -> dict[str, SearchEngine]:
    """The named engines; an engine that fuses others builds them too, each once."""
    built: dict[str, SearchEngine] = {}

    def build(name: str, trail: tuple[str, ...] = ()) -> SearchEngine:
        if name in built:
            return built[name]
        if name in trail:
            raise EngineError(f"engine {name} fuses itself: {' -> '.join((*trail, name))}")
        if name not in specs:
            raise EngineError(f"unknown engine {name!r} (known: {', '.join(sorted(specs))})")
        spec = specs[name]
        if isinstance(spec, BM25Spec):
            engine = BM25Engine(catalog, spec)
        elif isinstance(spec, DenseSpec):
            engine = DenseEngine(catalog, spec, cache_dir)
        elif isinstance(spec, FusionSpec):
            engine = FusionEngine([build(n, (*trail, name)) for n in spec.engines], spec.k, spec.depth, [spec.weights.get(n, 1.0) for n in spec.engines])
        elif isinstance(spec, HttpSpec):
            engine = HttpEngine(name, spec)
        elif isinstance(spec, TrecSpec):
            engine = TrecRunEngine(spec.path)
        elif isinstance(spec, SearchClusterSpec):
            engine = SearchClusterEngine(name, spec)
        elif isinstance(spec, SolrSpec):
            engine = SolrEngine(name, spec)
        else:
            raise EngineError(f"engine {name}: unknown kind {spec.kind!r}")
        built[name] = engine
        return engine

    return {name: build(name) for name in names}

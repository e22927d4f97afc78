"""Search engines behind one interface (``base.SearchEngine``), built by name from the settings."""

from pathlib import Path

from rae.config import BM25Spec, DenseSpec, EngineSpec, FusionSpec, HttpSpec, TrecSpec
from rae.datasets.catalog import Catalog
from rae.eval.engines.base import EngineError, SearchEngine
from rae.eval.engines.bm25 import BM25Engine
from rae.eval.engines.dense import DenseEngine, dense_available
from rae.eval.engines.fusion import FusionEngine
from rae.eval.engines.http import HttpEngine
from rae.eval.engines.trec import TrecRunEngine

__all__ = ["EngineError", "SearchEngine", "build_engines", "dense_available"]


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
            engine = FusionEngine([build(n, (*trail, name)) for n in spec.engines], spec.k, spec.depth)
        elif isinstance(spec, HttpSpec):
            engine = HttpEngine(name, spec)
        elif isinstance(spec, TrecSpec):
            engine = TrecRunEngine(spec.path)
        else:
            raise EngineError(f"engine {name}: unknown kind {spec.kind!r}")
        built[name] = engine
        return engine

    return {name: build(name) for name in names}

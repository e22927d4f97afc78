"""An engine's tunable parameters, as its ``tune`` table in ``rae.toml`` declares them, and the engine spec a trial's
values make.

What can be tuned is what the engine's spec holds: for ``bm25`` its ``k1``, ``b`` and each field's weight
(``fields.title``); for ``rrf`` its ``k`` and each fused engine's weight (``weights.bm25-full``); for ``opensearch``,
``elasticsearch`` and ``solr`` any ``{{placeholder}}`` of the query template (``q`` and ``qf`` for Solr), which then
needs a start value, since the template has none: ``tune = { title_boost = [1, 10, 3] }``.
"""

import decimal
import math
import re
from dataclasses import dataclass
from typing import Any

import tomlkit

from rae.config import BM25Spec, ConfigError, EngineSpec, FusionSpec, SearchClusterSpec, SolrSpec

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
RESERVED = {"query", "k"}  # filled in by the engine itself


@dataclass(frozen=True)
class Parameter:
    name: str
    low: float
    high: float
    start: float

    @property
    def digits(self) -> int:
        """Decimal places of the trials' values: a thousandth of the range or finer, and as fine as the declared low
        and start, so that those lie on the grid. A tuned engine then reads 4.818, not 4.818313802505147, and the
        value written is the value tried (no gain lies between two points a thousandth of the range apart)."""
        declared = max(-decimal.Decimal(repr(v)).normalize().as_tuple().exponent for v in (self.low, self.start))
        return max(0, 3 - math.floor(math.log10(self.high - self.low)), int(declared))

    @property
    def step(self) -> float:
        return 10.0 ** -self.digits

    def on_grid(self, value: float) -> float:
        """The value without the float noise a step leaves (0.30000000000000004 is 0.3); a value off the grid (a study
        an older rae began) as it is, since it is the value that was tried."""
        rounded = round(value, self.digits)
        return rounded if abs(rounded - value) < 1e-6 * self.step else value


def parameters(engine: str, spec: EngineSpec) -> list[Parameter]:
    """The declared parameters, each with its range and its value in the spec as it stands (the study's start)."""
    declared = getattr(spec, "tune", {}) or {}
    if not declared:
        raise ConfigError(f"engine {engine} declares nothing to tune: add tune = {{ k1 = [0.5, 2.0], ... }} to [engines.{engine}] in rae.toml")
    found = []
    for name, bounds in declared.items():
        if len(bounds) not in (2, 3) or bounds[0] >= bounds[1]:
            raise ConfigError(f"engine {engine}: tune.{name} needs [low, high] (or [low, high, start]) with low < high")
        start = bounds[2] if len(bounds) == 3 else _current(engine, spec, name)
        if not bounds[0] <= start <= bounds[1]:
            raise ConfigError(f"engine {engine}: tune.{name} starts at {start:g}, outside [{bounds[0]:g}, {bounds[1]:g}]")
        found.append(Parameter(name, float(bounds[0]), float(bounds[1]), float(start)))
    return found


def with_values(spec: EngineSpec, values: dict[str, float]) -> EngineSpec:
    """The spec with a trial's values in place (a template's placeholders filled)."""
    if isinstance(spec, BM25Spec | FusionSpec):
        update: dict[str, Any] = {}
        for name, value in values.items():
            if "." in name:
                table, key = name.split(".", 1)
                update[table] = {**getattr(spec, table), **update.get(table, {}), key: value}
            else:
                update[name] = value
        return spec.model_copy(update=update)
    if isinstance(spec, SearchClusterSpec):
        return spec.model_copy(update={"query": _filled(spec.query, values)})
    if isinstance(spec, SolrSpec):
        return spec.model_copy(update={"q": _filled(spec.q, values), "qf": _filled(spec.qf, values) if spec.qf else spec.qf})
    raise ConfigError(f"engines of kind {spec.kind} have nothing rae can tune")


def as_toml(name: str, spec: EngineSpec) -> str:
    """The spec as an ``[engines.<name>]`` table (its search space left out: it is the tuned engine)."""
    values = {k: v for k, v in spec.model_dump(mode="json", exclude={"tune"}, exclude_none=True).items() if v not in ({}, [])}
    return tomlkit.dumps({"engines": {name: values}})


def _current(engine: str, spec: EngineSpec, name: str) -> float:
    if isinstance(spec, BM25Spec | FusionSpec):
        table, _, key = name.partition(".")
        if not hasattr(spec, table) or table in ("kind", "tune", "engines"):
            raise ConfigError(f"engine {engine}: {name} is not a parameter of a {spec.kind} engine")
        value = getattr(spec, table)
        if key:
            if table == "weights" and isinstance(spec, FusionSpec):
                if key not in spec.engines:
                    raise ConfigError(f"engine {engine}: weights.{key} names no fused engine ({', '.join(spec.engines)})")
                return float(value.get(key, 1.0))
            if not isinstance(value, dict):
                raise ConfigError(f"engine {engine}: {name} is not a parameter of a {spec.kind} engine")
            return float(value.get(key, 0.0))
        return float(value)
    templates = [spec.query] if isinstance(spec, SearchClusterSpec) else [spec.q, spec.qf or ""] if isinstance(spec, SolrSpec) else []
    if name in RESERVED or not any(f"{{{{{name}}}}}" in t for t in templates):
        raise ConfigError(f"engine {engine}: tune.{name} is no {{{{placeholder}}}} of its query template")
    raise ConfigError(f"engine {engine}: tune.{name} is a template placeholder: give it a start value, [low, high, start]")


def _filled(template: str, values: dict[str, float]) -> str:
    return PLACEHOLDER.sub(lambda m: f"{values[m[1]]:g}" if m[1] in values else m[0], template)

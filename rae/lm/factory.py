"""Build the ``dspy.LM`` that a ``ModelSpec`` names, and the identity under which its outputs are stored.

DSPy's own response cache is turned off on every LM rae builds: rae's store is the one cache, keyed on the program,
the model identity below and the content, so two caches can never disagree (DSPy's key ignores ``api_base``).
"""

import json
import os
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dspy

from rae.config import EMBEDDED_PREFIX, ConfigError, ModelPrice, ModelSpec, PromptFormat
from rae.lm.adapter import GrammarJSONAdapter, JSONAdapter
from rae.lm.direct import ServerLM
from rae.lm.embedded import LlamaCppEngine, default_threads, file_digest, smollm2_path
from rae.lm.limits import RateLimiter
from rae.lm.native import ProbeSettings, ensure_runs_here
from rae.lm.pricing import call_cost, resolve_price
from rae.lm.recorder import CallPolicy
from rae.lm.retry import RetryPolicy
from rae.lm.server import OpenAICompatibleEngine

EMBEDDED_MODELS = {"smollm2": smollm2_path}
NO_KEY = "no-key-needed"


class ModelHandle:
    """A model spec resolved on this machine: the weights it names (for embedded models) and its store identity."""

    def __init__(self, spec: ModelSpec, price: ModelPrice | None = None, score_choices: bool = False):
        self.spec = spec
        self.configured_price = price
        self.score_choices = score_choices

    @cached_property
    def price(self) -> ModelPrice | None:
        return resolve_price(self.spec, self.configured_price)

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        return call_cost(self.price, input_tokens, output_tokens)

    @cached_property
    def lm(self) -> dspy.LM:
        """The model as a ``dspy.LM``, built once: every worker and every step calling this model shares it."""
        return self.build()

    @property
    def has_vision(self) -> bool:
        """Whether the model reads images: as configured, else no for the embedded model, else DSPy's model list,
        else yes for a server (the user chose it; a text-only server answers an image with an error)."""
        if self.spec.vision is not None:
            return self.spec.vision
        if self.spec.is_embedded:
            return False
        from dspy.clients.model_metadata import model_info

        provider, _, model = self.spec.name.rpartition("/")
        known = model_info(provider or "openai", model).get("supports_vision")
        return bool(known) if known is not None else self.spec.api_base is not None

    @cached_property
    def weights(self) -> Path | None:
        if not self.spec.is_embedded:
            return None
        name = self.spec.name.removeprefix(EMBEDDED_PREFIX)
        if name in EMBEDDED_MODELS:
            return EMBEDDED_MODELS[name]()
        path = Path(name).expanduser()
        if path.suffix != ".gguf" or not path.exists():
            known = ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED_MODELS)
            raise ConfigError(f"unknown embedded model {self.spec.name!r}: use {known} or local/<path to a .gguf file>")
        return path

    @cached_property
    def identity(self) -> str:
        """Everything that changes what the model answers: name, weights or server, and decoding settings.

        Never a key: a URL's user and password are dropped.
        """
        parts = {"model": self.spec.name, "temperature": self.spec.temperature, "max_tokens": self.spec.max_tokens}
        if self.spec.api_base and self.spec.structured_output != "json_object":
            parts["structured_output"] = self.spec.structured_output
        if self.prompt_format != "dspy":  # another prompt is another answer
            parts["prompt_format"] = self.prompt_format
        if self.weights is not None:
            parts["weights"] = file_digest(self.weights)
            parts["seed"] = self.spec.seed
            parts["repeat_penalty"] = self.spec.repeat_penalty
            parts["max_string_chars"] = self.spec.max_string_chars
            if self.spec.extra_buffer_types:  # other kernels, other rounding
                parts["extra_buffer_types"] = True
        if self.spec.api_base:
            parts["api_base"] = _without_credentials(self.spec.api_base)
        return json.dumps(parts, sort_keys=True)

    @property
    def prompt_format(self) -> PromptFormat:
        return self.spec.prompt_format or ("grammar" if self.spec.is_embedded else "dspy")

    def adapter(self) -> JSONAdapter:
        """The adapter that writes this model's prompts (``prompt_format``)."""
        return GrammarJSONAdapter() if self.prompt_format == "grammar" else JSONAdapter()

    @cached_property
    def call_policy(self) -> CallPolicy:
        """One rate limiter and retry policy per model, shared by every worker that calls it."""
        return CallPolicy(
            retry=RetryPolicy(max_retries=self.spec.num_retries),
            limiter=RateLimiter(self.spec.requests_per_minute, self.spec.tokens_per_minute),
        )

    @property
    def gives_probabilities(self) -> bool:
        """Whether the model can say how likely each option of a choice was (the embedded model scores them)."""
        return self.spec.is_embedded

    @property
    def max_workers(self) -> int | None:
        """How many calls the model can serve at once: one for an in-process model (it holds a lock), else no limit."""
        return 1 if self.spec.is_embedded else None

    def api_key(self) -> str | None:
        """The key the config names (``api_key_env``), read from the environment; None if it names none."""
        spec = self.spec
        if not spec.api_key_env:
            return None
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise ConfigError(f"model {spec.name!r} reads its API key from ${spec.api_key_env}, which is not set")
        return key

    def build(self) -> dspy.LM:
        spec = self.spec
        if self.weights is not None:
            threads = spec.n_threads or default_threads()
            ensure_runs_here(self.weights, ProbeSettings(threads, spec.extra_buffer_types))  # a crash here is one line, not a dead process
            engine = LlamaCppEngine(
                self.weights,
                n_ctx=spec.n_ctx,
                n_threads=threads,
                seed=spec.seed,
                max_string_chars=spec.max_string_chars,
                repeat_penalty=spec.repeat_penalty,
                score_choices=self.score_choices,
                extra_buffer_types=spec.extra_buffer_types,
            )
            return dspy.LM(
                spec.name, engine=engine, temperature=spec.temperature, max_tokens=spec.max_tokens, cache=False, num_retries=0
            )
        client: dict[str, object] = {}
        if spec.api_base:
            client["api_base"] = spec.api_base
        if spec.api_key_env:
            client["api_key"] = self.api_key()
        elif spec.api_base:
            client["api_key"] = NO_KEY  # a local server (vLLM, Ollama, llama.cpp) needs none; the OpenAI client insists
        engine = spec.engine or ("server" if spec.api_base else "auto")
        if engine == "server":
            if not spec.api_base:
                raise ConfigError(f"model {spec.name!r}: engine 'server' needs an api_base")
            served = OpenAICompatibleEngine(
                spec.api_base,
                spec.name.split("/", 1)[-1],
                api_key=str(client.get("api_key")),
                timeout_s=spec.timeout_s,
                structured_output=spec.structured_output,
            )
            return ServerLM(spec.name, engine=served, temperature=spec.temperature, max_tokens=spec.max_tokens, cache=False, num_retries=0)
        return dspy.LM(
            spec.name,
            engine=engine,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            num_retries=0,  # rae retries, with jitter and counted (rae.lm.retry)
            timeout=spec.timeout_s,
            cache=False,
            **client,
        )


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))

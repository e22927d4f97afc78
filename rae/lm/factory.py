"""A ``ModelSpec`` resolved on this machine: what sends its requests (a sender), and what it sends, which is what its
answers are stored under.

The sender is rae's own for the embedded model (llama.cpp) and for a server with an ``api_base`` (httpx from threads,
aiohttp on an event loop), and one of DSPy's engines (lm15's or LiteLLM's, ``rae.lm.dspy_engines``) for any other model
string. Whichever it is, the program's calls reach it through the store (``rae.annotate.stored_lm``), which keys each
answer on ``sent(request)``: the body a server or a batch is sent, or the engine and DSPy's request for the others.
DSPy's own response cache is off everywhere, so two caches can never disagree (DSPy's key ignores ``api_base``).
"""

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dspy

from rae.config import EMBEDDED_PREFIX, ConfigError, ModelPrice, ModelSpec, PromptFormat
from rae.lm.adapter import GrammarJSONAdapter
from rae.lm.dspy_engines import built_in
from rae.lm.embedded import LlamaCppEngine, default_threads, file_digest, smollm2_path
from rae.lm.limits import RateLimiter
from rae.lm.native import ProbeSettings, ensure_runs_here
from rae.lm.pricing import call_cost, resolve_price
from rae.lm.retry import CallPolicy, RetryPolicy
from rae.lm.server import SUPPORTED_PARAMS, ServerEngine, chat_body
from rae.store.keys import canonical_request

EMBEDDED_MODELS = {"smollm2": smollm2_path}
NO_KEY = "no-key-needed"
OPENAI_API = "https://api.openai.com/v1"  # where a batch goes when the model names no api_base
BODY_SENDERS = ("server", "batch")  # senders whose wire body rae writes itself (``chat_body``)


class ModelHandle:
    """A model spec resolved on this machine: the weights it names (for embedded models) and its store identity."""

    def __init__(self, spec: ModelSpec, price: ModelPrice | None = None, score_choices: bool = False, batch: bool = False):
        self.spec = spec
        self.configured_price = price
        self.score_choices = score_choices
        self.batch = batch  # sent as a batch (``rae.scaleout.batch``): the batch API's address and structured output

    @cached_property
    def price(self) -> ModelPrice | None:
        return resolve_price(self.spec, self.configured_price)

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        return call_cost(self.price, input_tokens, output_tokens)

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

    @property
    def sender_kind(self) -> str:
        """What sends the requests: ``llama.cpp`` (in-process), ``server`` (rae's chat-completions client), ``batch``, or
        DSPy's ``lm15``, ``litellm`` or ``auto`` (lm15 where it can, else LiteLLM)."""
        if self.batch:
            return "batch"
        if self.spec.is_embedded:
            return "llama.cpp"
        return self.spec.engine or ("server" if self.spec.api_base else "auto")

    def sent(self, request: Any) -> dict[str, Any]:
        """What the sender sends for ``request``, which is what its answer is keyed on: a server's or a batch's
        chat-completions body and the address it is posted to; for the others, the sender, the model's settings that no
        request carries (``identity``) and DSPy's request."""
        if self.sender_kind in BODY_SENDERS:
            return {"url": self.chat_url, "body": chat_body(request, self.served_name, self.structured_output)}
        return {"sender": self.sender_kind, "model": json.loads(self.identity), "request": canonical_request(request)}

    @property
    def served_name(self) -> str:
        """The model's name as a server knows it (the provider prefix dropped)."""
        return self.spec.name.split("/", 1)[-1]

    @property
    def chat_url(self) -> str:
        """Where a chat-completions body goes (without a user or password): the api_base's, or OpenAI's for a batch."""
        base = self.spec.api_base or OPENAI_API
        return _without_credentials(base) + "/chat/completions"

    @property
    def structured_output(self) -> str:
        """How a body asks for JSON: as the model's settings say for a server; OpenAI's own batch API takes a schema."""
        return self.spec.structured_output if self.spec.api_base else "json_schema"

    @cached_property
    def identity(self) -> str:
        """Everything that changes what the model answers: its sender, name, weights or server, and decoding settings.

        Never a key: a URL's user and password are dropped.
        """
        return json.dumps({"sender": self.sender_kind, **self._identity_parts()}, sort_keys=True)

    @cached_property
    def identity_before_senders(self) -> str:
        """The identity store schemas 1 and 2 knew this model by (without its sender): to carry their answers over."""
        return json.dumps(self._identity_parts(), sort_keys=True)

    def _identity_parts(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"model": self.spec.name, "temperature": self.spec.temperature, "max_tokens": self.spec.max_tokens}
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
            if self.score_choices:  # its answers carry the probability of each option of a choice
                parts["scores_choices"] = True
        if self.spec.api_base:
            parts["api_base"] = _without_credentials(self.spec.api_base)
        return parts

    @property
    def prompt_format(self) -> PromptFormat:
        return self.spec.prompt_format or ("grammar" if self.spec.is_embedded else "dspy")

    def adapter(self) -> dspy.JSONAdapter:
        """The adapter that writes this model's prompts (``prompt_format``): DSPy's JSONAdapter, or the grammar one."""
        return GrammarJSONAdapter() if self.prompt_format == "grammar" else dspy.JSONAdapter()

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

    def sender(self) -> Any:
        """What sends this model's requests: an engine with ``complete`` and ``acomplete`` (and ``close``/``aclose``)."""
        spec = self.spec
        if self.weights is not None:
            threads = spec.n_threads or default_threads()
            ensure_runs_here(self.weights, ProbeSettings(threads, spec.extra_buffer_types))  # a crash here is one line, not a dead process
            return LlamaCppEngine(
                self.weights,
                n_ctx=spec.n_ctx,
                n_threads=threads,
                seed=spec.seed,
                max_string_chars=spec.max_string_chars,
                repeat_penalty=spec.repeat_penalty,
                score_choices=self.score_choices,
                extra_buffer_types=spec.extra_buffer_types,
            )
        engine = spec.engine or ("server" if spec.api_base else "auto")
        if engine == "server":
            if not spec.api_base:
                raise ConfigError(f"model {spec.name!r}: engine 'server' needs an api_base")
            key = self.api_key() if spec.api_key_env else None
            return ServerEngine(spec.api_base, self.served_name, key, spec.timeout_s, spec.structured_output)
        client: dict[str, object] = {"timeout": spec.timeout_s, "engine": engine}
        if spec.api_base:
            client["api_base"] = spec.api_base
            client["api_key"] = self.api_key() if spec.api_key_env else NO_KEY  # a local server needs none; OpenAI's client insists
        elif spec.api_key_env:
            client["api_key"] = self.api_key()
        return built_in(spec.name, **client)


class Capabilities:
    """A model's capabilities without its engine, for a run that only reads the store: DSPy renders the same request
    (the same response format) as for the real engine, and nothing is loaded, probed or connected to."""

    def __init__(self, model: ModelHandle):
        spec = model.spec
        if spec.is_embedded or (spec.engine or ("server" if spec.api_base else "auto")) == "server":
            self.supports_response_schema = spec.is_embedded or spec.structured_output in ("json_schema", "llama_cpp")
            self.supported_params = SUPPORTED_PARAMS
        else:
            built = built_in(spec.name, timeout=spec.timeout_s, engine=spec.engine or "auto")
            self.supports_response_schema, self.supported_params = built.supports_response_schema, built.supported_params

    def complete(self, request: Any) -> Any:
        raise RuntimeError("a lookup-only run made a call")

    async def acomplete(self, request: Any) -> Any:
        raise RuntimeError("a lookup-only run made a call")


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))

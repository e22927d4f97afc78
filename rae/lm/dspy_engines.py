"""A model that DSPy's own engines reach (lm15's native providers, or LiteLLM): OpenAI, Anthropic, Gemini, ...

rae's program renders its prompts through DSPy as for any model, and the store's engine (``rae.annotate.stored_lm``)
hands the canonical ``lm15.Request`` that comes out to one of DSPy's public engines directly
(``dspy.clients.engines``: ``LM15Engine`` / ``AsyncLM15Engine``, or ``LiteLLMEngine`` / ``AsyncLiteLLMEngine``): one
attempt, no cache, no retries, no pricing of its own, as their contract says, so no ``dspy.LM`` runs inside another
and a call is priced once, by rae. The engine is chosen as ``dspy.LM`` chooses it: ``lm15`` (DSPy's native route,
with the model's api_base as that provider's address), ``litellm``, or ``auto``: lm15 when it can carry the request
(its offline ``plan`` says so, before any I/O), else LiteLLM. What the model can do (a response schema, which
settings it takes) is read once from a ``dspy.LM`` of the same model string that makes no call.
"""

from typing import Any

import dspy
from dspy.clients.engines import AsyncLiteLLMEngine, AsyncLM15Engine, LiteLLMEngine, LM15Engine
from dspy.clients.engines.lm15_engine import timeouts_for
from dspy.lm15 import Request, Response, RouterConfig, UnknownModelError, UnsupportedFeatureError

NATIVE = "lm15"


class DSPyEngines:
    """``complete`` (from a thread) and ``acomplete`` (on an event loop) through DSPy's engines for one model string."""

    def __init__(self, model: str, engine: str = "auto", api_base: str | None = None, api_key: str | None = None, timeout: float | None = None):
        self.model, self.engine = model, engine
        clients: dict[str, Any] = {k: v for k, v in (("api_base", api_base), ("api_key", api_key), ("timeout", timeout)) if v is not None}
        self._native = self._native_engines(model, engine, api_base, api_key, timeout)
        self._compatible = (LiteLLMEngine(model_type="chat", **clients), AsyncLiteLLMEngine(model_type="chat", **clients)) if engine != NATIVE else None
        asked = dspy.LM(model, cache=False, num_retries=0, engine=engine, **clients)  # asked once what the model can do; never called
        self.supports_response_schema = bool(asked.supports_response_schema)
        self.supported_params = frozenset(asked.supported_params)

    def complete(self, request: Request) -> Response:
        return self._chosen(request)[0].complete(request)

    async def acomplete(self, request: Request) -> Response:
        return await self._chosen(request)[1].complete(request)

    def close(self) -> None:
        for pair in (self._native, self._compatible):
            if pair is not None:
                pair[0].close()

    async def aclose(self) -> None:
        for pair in (self._native, self._compatible):
            if pair is not None:
                await pair[1].aclose()

    def _chosen(self, request: Request) -> tuple[Any, Any]:
        """lm15 where it can carry the request, else LiteLLM (``auto``); the one named otherwise."""
        if self._native is not None and self.engine == "auto":
            try:
                self._native[0].plan(request)
            except UnsupportedFeatureError:
                return self._compatible
        return self._native if self._native is not None else self._compatible

    @staticmethod
    def _native_engines(model: str, engine: str, api_base: str | None, api_key: str | None, timeout: float | None) -> tuple[Any, Any] | None:
        """DSPy's native engines for the model's provider, with its address and key; None where lm15 has no route and
        the engine may be LiteLLM."""
        if engine == "litellm":
            return None
        try:
            provider = LM15Engine(RouterConfig(env={})).resolve(model).provider
        except (UnknownModelError, UnsupportedFeatureError):
            if engine == NATIVE:
                raise
            return None
        config = RouterConfig(api_keys={provider: api_key} if api_key else None, base_urls={provider: api_base} if api_base else None,
                              timeouts=timeouts_for(timeout))
        return LM15Engine(config), AsyncLM15Engine(config)


def built_in(model: str, engine: str = "auto", **settings: Any) -> DSPyEngines:
    """DSPy's engines for ``model``, with the connection settings (api_base, api_key, timeout) it passes on."""
    return DSPyEngines(model, engine, settings.get("api_base"), settings.get("api_key"), settings.get("timeout"))

"""A model that DSPy's own engines reach (LiteLLM, or lm15's native providers): OpenAI, Anthropic, Gemini, ...

rae's program renders its prompts through DSPy as for any model, and the store keys the canonical ``lm15.Request``
that comes out. To send it, this hands the request itself to an inner ``dspy.LM`` of the same model string, which
takes an explicit Request and answers with a Response (DSPy's public contract); its own cache and retries are off,
since the store is the cache and rae retries.
"""

from typing import Any

import dspy
from dspy.lm15 import Request, Response


class DSPyEngines:
    def __init__(self, lm: dspy.LM):
        self.lm = lm
        # Asked once: for a model DSPy's metadata does not know, each answer scans the whole snapshot.
        self.supports_response_schema = bool(lm.supports_response_schema)
        self.supported_params = frozenset(lm.supported_params)

    def complete(self, request: Request) -> Response:
        return self.lm(request)

    async def acomplete(self, request: Request) -> Response:
        return await self.lm.acall(request)

    def close(self) -> None:
        self.lm.close()

    async def aclose(self) -> None:
        await self.lm.aclose()


def built_in(model: str, **settings: Any) -> DSPyEngines:
    """DSPy's engines for ``model``, with the connection settings (api_base, api_key, timeout) DSPy passes on."""
    return DSPyEngines(dspy.LM(model, cache=False, num_retries=0, **settings))

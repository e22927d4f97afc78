"""A scripted LM for unit tests: a real ``dspy.LM`` over a custom engine whose answers a test writes.

It sits where a model would: as the engine behind the store (``install_scripted``), or behind a plain ``dspy.LM``
(``scripted_lm``); DSPy's adapter formats the prompt and parses the JSON reply, so the tests exercise the same code
path as a real run. The step a request belongs to is read from the output schema it carries.
"""

import json
import re
import threading
from collections import Counter
from collections.abc import Callable

import dspy
from dspy.lm15 import Message, Request, Response, TextPart, Usage

Answer = dict | str | Exception


def stage_of(request: Request) -> str:
    properties = (request.config.response_format or {}).get("schema", {}).get("properties", {})
    if "label" in properties:
        return "judgment"
    if "requirements" in properties:
        return "requirements"
    if "highly_relevant" in properties:
        return "guidelines"
    if "description" in properties:
        return "description"
    if "cause" in properties:
        return "error_cause"
    return "unknown"


def field_text(request: Request, name: str) -> str:
    """The value of one input field in the last user message (``[[ ## name ## ]]`` blocks)."""
    text = request.messages[-1].text or ""
    match = re.search(rf"\[\[ ## {name} ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", text, re.S)
    return match.group(1).strip() if match else ""


def default_answer(stage: str, request: Request) -> Answer:
    if stage == "requirements":
        return {"requirements": [{"name": "product type", "value": field_text(request, "query"), "importance": "must"}]}
    if stage == "guidelines":
        query = field_text(request, "query")
        return {
            "highly_relevant": f"a {query}",
            "acceptable_substitute": f"something close to a {query}",
            "irrelevant": f"anything that is not a {query}",
        }
    if stage == "judgment":
        query, product = field_text(request, "query").lower(), field_text(request, "product").lower()
        words = [w for w in query.split() if len(w) > 2]
        hits = sum(w in product for w in words)
        label = "highly_relevant" if words and hits == len(words) else "acceptable_substitute" if hits else "irrelevant"
        return {"reasoning": f"{hits} of {len(words)} query words appear", "label": label}
    if stage == "description":
        return {"description": "a red square"}
    if stage == "error_cause":
        strict = field_text(request, "judge_label") == "irrelevant"
        return {"cause": "too_strict" if strict else "product_type", "explanation": "the judge weighed the type"}
    return {}


class ScriptedEngine:
    """Answers with ``script(stage, request)`` (default: a word-overlap judge). An answer may be a dict (sent as JSON),
    a string (sent as is, e.g. garbage), or an exception (raised, as a provider error would be)."""

    supports_response_schema = True
    supported_params = frozenset({"temperature", "max_tokens", "response_format", "seed", "stop"})

    def __init__(self, script: Callable[[str, Request], Answer] | None = None):
        self.script = script or default_answer
        self.calls: Counter[str] = Counter()
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def complete(self, request: Request) -> Response:
        stage = stage_of(request)
        with self._lock:
            self.calls[stage] += 1
            self.requests.append(request)
        answer = self.script(stage, request)
        if isinstance(answer, Exception):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return Response(
            id=None,
            model=request.model,
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=100, output_tokens=10),
        )

    async def acomplete(self, request: Request) -> Response:
        return self.complete(request)

    def close(self) -> None:
        pass


class AsyncScripted:
    """The scripted engine as DSPy's async engine (an ``async complete``)."""

    def __init__(self, engine: ScriptedEngine):
        self.engine = engine

    async def complete(self, request: Request) -> Response:
        return self.engine.complete(request)


def scripted_lm(engine: ScriptedEngine, name: str = "local/smollm2") -> dspy.LM:
    """The scripted engine as a plain ``dspy.LM``, for a program run without a store."""
    return dspy.LM(name, engine=engine, async_engine=AsyncScripted(engine), temperature=0.0, max_tokens=256, cache=False, num_retries=0)

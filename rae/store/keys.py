"""Store keys: what a model was sent, as one fingerprint.

A stored answer is keyed on what its sender sends (``ModelHandle.sent``): for an OpenAI-compatible server and for a
batch, the chat-completions body itself and the address it goes to, so a batch and an online call share a key exactly
when their bodies are equal; for an engine that turns DSPy's request into its own body (llama.cpp in-process, DSPy's
lm15 or LiteLLM engines), the engine, every setting of the model that no request carries, and DSPy's canonical
``lm15.Request`` (system message, messages with every part, generation settings, response format, tools). Nothing in
the key is maintained by hand: a change to a prompt from any source (a program's instructions or demos, an adapter,
DSPy's own formatting, the product text, a refining attempt's hint) is a change to what is sent, and misses; so is a
change of engine. Settings left unset and empty lists are left out, so a field DSPy adds to the request later does not
change the key of every request that leaves it unset. Image bytes are replaced by their sha256, in the key and in what
is stored.
"""

import base64
import dataclasses
import hashlib
import json
from typing import Any

from dspy.lm15 import Request


def request_key(sent: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The fingerprint of what is sent, and the form it was computed from (what is stored beside the answer)."""
    stored = _pruned(sent)
    text = json.dumps(stored, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest(), stored


def identity_request_key(model_identity: str, request: Request) -> str:
    """The key store schema 2 used (the model's identity and DSPy's canonical request): only to carry answers over."""
    text = json.dumps({"model": model_identity, "request": canonical_request(request)}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_request(request: Request) -> dict[str, Any]:
    return _pruned(dataclasses.asdict(request))


def content_hash(content: Any) -> str:
    """The sha256 of any JSON-able content (a pair's inputs, a labelled set)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {key: _pruned(item) for key, item in value.items() if item is not None and item != () and item != []}
        return _hashed_image(pruned)
    if isinstance(value, list | tuple):
        return [_pruned(item) for item in value]
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return value


def _hashed_image(part: dict[str, Any]) -> dict[str, Any]:
    """An image part's inline data as its hash: the key of a megabyte of base64 need not carry the megabyte."""
    data = part.get("data")
    if part.get("type") in ("image", "audio", "video", "document", "binary") and isinstance(data, str) and len(data) > 64:
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            raw = data.encode()
        part = {**part, "data": "sha256:" + hashlib.sha256(raw).hexdigest()}
    url = part.get("url")
    if isinstance(url, str) and url.startswith("data:") and len(url) > 64:
        part = {**part, "url": "data:sha256:" + hashlib.sha256(url.encode()).hexdigest()}
    return part


@dataclasses.dataclass(frozen=True, slots=True)
class StoreKey:
    """The key of an older rae's stage rows: (stage, program hash, model identity, input content)."""

    stage: str
    program_hash: str
    model_id: str
    input_hash: str
    fingerprint: str = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", content_hash([self.stage, self.program_hash, self.model_id, self.input_hash]))


def key_for(stage: str, program_hash: str, model_id: str, content: dict[str, Any]) -> StoreKey:
    return StoreKey(stage=stage, program_hash=program_hash, model_id=model_id, input_hash=content_hash(content))

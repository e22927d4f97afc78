"""Store keys: a fingerprint of (stage, program hash, model identity, input content).

Whatever changes an LM's answer changes the key: the program (its instructions, demos and output types), the model
(its name, weights or server, and decoding settings) and the exact input text. So a changed product text, program or
model never hits a stale row, and identical work, whichever engine configuration or command asks for it, hits the
same row and is never paid twice.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def content_hash(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoreKey:
    stage: str
    program_hash: str
    model_id: str
    input_hash: str
    fingerprint: str = field(init=False, compare=False)  # computed once: a step reads it several times

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", content_hash([self.stage, self.program_hash, self.model_id, self.input_hash]))


def key_for(stage: str, program_hash: str, model_id: str, content: dict[str, Any]) -> StoreKey:
    return StoreKey(stage=stage, program_hash=program_hash, model_id=model_id, input_hash=content_hash(content))

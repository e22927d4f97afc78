"""DSPy's JSONAdapter, with the same prompts built for less CPU.

At 64 concurrent calls, rae's throughput is bound by the Python work per call, and a third of DSPy's share of it is
prompt formatting that repeats itself: the system message depends only on the signature, yet is rebuilt on every
call; and a plain string input goes through a pydantic serialiser only to come out unchanged. This adapter caches the
first and passes the second through. The messages it builds are identical to DSPy's own (a test holds them equal),
so programs, store keys and compiled artifacts do not change.
"""

import threading
from typing import Any

import dspy
from dspy.adapters.chat_adapter import FieldInfoWithName
from dspy.adapters.utils import format_field_value


class JSONAdapter(dspy.JSONAdapter):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._system_messages: dict[type, str] = {}
        self._lock = threading.Lock()

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        cached = self._system_messages.get(signature)
        if cached is None:
            cached = super().format_system_message(signature)
            with self._lock:
                self._system_messages[signature] = cached
        return cached

    def format_field_with_value(self, fields_with_values: dict[FieldInfoWithName, Any], role: str = "user") -> str:
        if role != "user":
            return super().format_field_with_value(fields_with_values, role)
        output = []
        for field, value in fields_with_values.items():
            formatted = value if type(value) is str else format_field_value(field_info=field.info, value=value)
            output.append(f"[[ ## {field.name} ## ]]\n{formatted}")
        return "\n\n".join(output).strip()

"""DSPy's JSONAdapter, with the same prompts built for less CPU.

At 64 concurrent calls, rae's throughput is bound by the Python work per call, and a third of DSPy's share of it is
prompt formatting that repeats itself: the system message depends only on the signature, yet is rebuilt on every
call; and a plain string input goes through a pydantic serialiser only to come out unchanged. This adapter caches the
first and passes the second through. The messages it builds are identical to DSPy's own (a test holds them equal),
so programs, store keys and compiled artifacts do not change.
"""

import threading
from typing import Any, Literal

import dspy
from dspy.adapters.chat_adapter import FieldInfoWithName
from dspy.adapters.utils import format_field_value


class JSONAdapter(dspy.JSONAdapter):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._system_messages: dict[Any, str | None] = {}
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
            output.append(f"[[ ## {field.name} ## ]]\n{_formatted(field.info, value)}")
        return "\n\n".join(output).strip()

    def format_user_message_content(
        self, signature: type[dspy.Signature], inputs: dict[str, Any], prefix: str = "", suffix: str = "", main_request: bool = False
    ) -> str:
        """DSPy's user message, with plain strings passed through (DSPy builds a pydantic TypeAdapter for each)."""
        messages = [prefix]
        for name, info in signature.input_fields.items():
            if name in inputs:
                messages.append(f"[[ ## {name} ## ]]\n{_formatted(info, inputs[name])}")
        if main_request:
            requirements = self._output_requirements(signature)
            if requirements is not None:
                messages.append(requirements)
        messages.append(suffix)
        return "\n\n".join(messages).strip()

    def _output_requirements(self, signature: type[dspy.Signature]) -> str | None:
        """The reminder of the output fields at the end of the user message; like the system message, it depends only
        on the signature."""
        key = ("requirements", signature)
        if key not in self._system_messages:
            reminder = self.user_message_output_requirements(signature)
            with self._lock:
                self._system_messages[key] = reminder
        return self._system_messages[key]


class GrammarJSONAdapter(JSONAdapter):
    """The prompt for a model whose output a grammar constrains (the embedded model).

    The grammar, compiled from the output schema, already enforces the JSON's shape, so the prompt need not show it.
    DSPy's JSONAdapter shows it as a ``{"field": "{field}"}`` template and pads a demo's missing field with "Not
    supplied for this particular example."; a 135M model copies both into its answers. This adapter names each
    output field with its description only (the field descriptions are the prompt), and a demo shows only the fields
    it has. Everything else (field descriptions, instructions, the user message) is DSPy's.
    """

    def format_field_structure(self, signature: type[dspy.Signature]) -> str:
        sections = ", ".join(f"[[ ## {name} ## ]]" for name in signature.input_fields)
        keys = "\n".join(f"- {name}: {_described(field)}" for name, field in signature.output_fields.items())
        return f"The inputs come in sections headed {sections}.\n\nAnswer with a JSON object with these keys, in this order:\n{keys}"

    def format_demos(self, signature: type[dspy.Signature], demos: list[dict[str, Any]]) -> list[dict[str, Any]]:
        messages = []
        for demo in demos:
            outputs = {name: demo[name] for name in signature.output_fields if demo.get(name) is not None}
            if not outputs or not any(demo.get(name) is not None for name in signature.input_fields):
                continue
            complete = len(outputs) == len(signature.output_fields) and all(demo.get(n) is not None for n in signature.input_fields)
            prefix = "" if complete else "This is an example of the task, though some input or output fields are not supplied."
            fields = {FieldInfoWithName(name=n, info=signature.output_fields[n]): v for n, v in outputs.items()}
            messages.append({"role": "user", "content": self.format_user_message_content(signature, demo, prefix=prefix)})
            messages.append({"role": "assistant", "content": self.format_field_with_value(fields, role="assistant")})
        return messages


def _formatted(info: Any, value: Any) -> str:
    """A field's value as DSPy formats it; a plain string is already that."""
    return value if type(value) is str else format_field_value(field_info=info, value=value)


def _described(field: Any) -> str:
    """A choice's allowed values (its meaning is in the field list above), else the field's description."""
    if getattr(field.annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(str(choice) for choice in field.annotation.__args__)
    description = (field.json_schema_extra or {}).get("desc", "")
    return "" if description.startswith("${") else description

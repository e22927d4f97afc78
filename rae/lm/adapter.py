"""DSPy's JSONAdapter, with the same prompts built for less CPU.

At 64 concurrent calls, rae's throughput is bound by the Python work per call, and a third of DSPy's share of it is
prompt formatting that repeats itself: the system message, the response format and which input field is a history
depend only on the signature (and the model), yet are worked out again on every call; and a plain string input goes through a pydantic serialiser only to come
out unchanged. This adapter caches the first two, per signature, and passes the third through. The messages and
formats it builds are identical to DSPy's own (tests hold them equal), so programs, store keys and compiled artifacts
do not change. The caches hold a signature weakly: a refine attempt's signature (one more input field) is a new class
each time, and is let go with it.
"""

import threading
import weakref
from typing import Any, Literal

import dspy
from dspy.adapters.chat_adapter import FieldInfoWithName
from dspy.adapters.utils import format_field_value

from rae.programs.refine import HINT_DESCRIPTION, HINT_FIELD


class JSONAdapter(dspy.JSONAdapter):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._per_signature: weakref.WeakKeyDictionary[type, dict[Any, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def format_system_message(self, signature: type[dspy.Signature]) -> str:
        return self._remembered(signature, "system", lambda: super(JSONAdapter, self).format_system_message(signature))

    def _get_history_field_name(self, signature: type[dspy.Signature]) -> str | None:
        """Which input field is a conversation history, if any: a scan of the signature's annotations on every call."""
        return self._remembered(signature, "history", lambda: super(JSONAdapter, self)._get_history_field_name(signature))

    def _get_tool_call_input_field_name(self, signature: type[dspy.Signature]) -> str | None:
        return self._remembered(signature, "tools", lambda: super(JSONAdapter, self)._get_tool_call_input_field_name(signature))

    def _get_tool_call_output_field_name(self, signature: type[dspy.Signature]) -> str | None:
        """Which output field holds tool calls, if any: asked again for every answer parsed."""
        return self._remembered(signature, "tool calls", lambda: super(JSONAdapter, self)._get_tool_call_output_field_name(signature))

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: type[dspy.Signature]) -> None:
        """DSPy's choice of response format (none, JSON mode, or a schema model built from the signature), made once
        per signature and model. For an LM with an engine object (rae's engines, whose capabilities are fixed); DSPy's
        string-named engines are asked every time, as DSPy does."""
        engine = getattr(lm, "engine", None)
        if engine is None or isinstance(engine, str):
            super()._prepare_response_format(lm, lm_kwargs, signature)
            return

        def chosen() -> dict[str, Any]:
            probe: dict[str, Any] = {}
            super(JSONAdapter, self)._prepare_response_format(lm, probe, signature)
            return probe

        lm_kwargs.update(self._remembered(signature, ("response_format", lm.model, engine), chosen))

    def _remembered(self, signature: type, what: Any, make: Any) -> Any:
        """``make()``, once per signature and ``what``."""
        known = self._per_signature.get(signature)
        if known is None or what not in known:
            value = make()
            with self._lock:
                self._per_signature.setdefault(signature, {})[what] = value
            return value
        return known[what]

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
        return self._remembered(signature, "requirements", lambda: self.user_message_output_requirements(signature))


class GrammarJSONAdapter(JSONAdapter):
    """The prompt for a model whose output a grammar constrains (the embedded model).

    The grammar, compiled from the output schema, already enforces the JSON's shape, so the prompt need not show it.
    DSPy's JSONAdapter shows it as a ``{"field": "{field}"}`` template and pads a demo's missing field with "Not
    supplied for this particular example."; a 135M model copies both into its answers. This adapter names each
    output field with its description only (the field descriptions are the prompt), and a demo shows only the fields
    it has. Everything else (field descriptions, instructions, the user message) is DSPy's.
    """

    def format_field_description(self, signature: type[dspy.Signature]) -> str:
        """DSPy's list of fields, without a refining attempt's hint: the system message stays the first attempt's."""
        return super().format_field_description(_without_hint(signature))

    def format_field_structure(self, signature: type[dspy.Signature]) -> str:
        sections = ", ".join(f"[[ ## {name} ## ]]" for name in _without_hint(signature).input_fields)
        keys = "\n".join(f"- {name}: {_described(field)}" for name, field in signature.output_fields.items())
        return f"The inputs come in sections headed {sections}.\n\nAnswer with a JSON object with these keys, in this order:\n{keys}"

    def user_message_output_requirements(self, signature: type[dspy.Signature]) -> None:
        """No reminder of the output format after the inputs: the grammar enforces it, and every token after the
        listing is evaluated anew for every judgment."""
        return None

    def format_user_message_content(
        self, signature: type[dspy.Signature], inputs: dict[str, Any], prefix: str = "", suffix: str = "", main_request: bool = False
    ) -> str:
        """DSPy's user message; a refining attempt's hint, which comes last, says what it is (its description is not in
        the system message)."""
        if HINT_FIELD in inputs:
            inputs = {**inputs, HINT_FIELD: f"{HINT_DESCRIPTION}: {inputs[HINT_FIELD]}"}
        return super().format_user_message_content(signature, inputs, prefix, suffix, main_request)

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


def _without_hint(signature: type[dspy.Signature]) -> type[dspy.Signature]:
    return signature.delete(HINT_FIELD) if HINT_FIELD in signature.input_fields else signature


def _formatted(info: Any, value: Any) -> str:
    """A field's value as DSPy formats it; a plain string is already that."""
    return value if type(value) is str else format_field_value(field_info=info, value=value)


def _described(field: Any) -> str:
    """A choice's allowed values (its meaning is in the field list above), else the field's description."""
    if getattr(field.annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(str(choice) for choice in field.annotation.__args__)
    description = (field.json_schema_extra or {}).get("desc", "")
    return "" if description.startswith("${") else description

"""The prompt for a model whose output a grammar constrains (the embedded model).

The grammar, compiled from the output schema, already enforces the JSON's shape, so the prompt need not show it.
DSPy's JSONAdapter shows it as a ``{"field": "{field}"}`` template and pads a demo's missing field with "Not supplied
for this particular example."; a 135M model copies both into its answers. This adapter names each output field with
its description only (the field descriptions are the prompt), shows a demo with only the fields it has, and leaves
out the reminder of the output format after the inputs. A refining attempt's hint (``rae.programs.refine``) is left
out of the system message and comes last in the user message, saying what it is: the attempt's prompt is then the
first attempt's up to the end of the listing, and llama.cpp evaluates only what follows. Everything else (field
descriptions, instructions, the user message) is DSPy's; every method here is one of DSPy's public adapter methods.

Other models get DSPy's own ``dspy.JSONAdapter``.
"""

from typing import Any, Literal

import dspy
from dspy.adapters.chat_adapter import FieldInfoWithName

from rae.programs.refine import HINT_DESCRIPTION, HINT_FIELD


class GrammarJSONAdapter(dspy.JSONAdapter):
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


def _described(field: Any) -> str:
    """A choice's allowed values (its meaning is in the field list above), else the field's description."""
    if getattr(field.annotation, "__origin__", None) is Literal:
        return "one of " + ", ".join(str(choice) for choice in field.annotation.__args__)
    description = (field.json_schema_extra or {}).get("desc", "")
    return "" if description.startswith("${") else description

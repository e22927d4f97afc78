"""rae's JSONAdapter builds exactly the messages DSPy's own does (every model but a grammar-constrained one reads
those), and the grammar adapter shows the embedded model no template and no filler to copy."""

import dspy
import pytest

from rae.config import ModelSpec
from rae.lm.adapter import GrammarJSONAdapter, JSONAdapter
from rae.lm.factory import ModelHandle
from rae.programs.describe import DescribeImage
from rae.programs.guidelines import GENERIC_GUIDELINES, WriteGuidelines
from rae.programs.judge import RelevanceJudge
from rae.programs.requirements import ExtractRequirements, Requirement

REQUIREMENTS = [Requirement(name="product type", value="kettle", importance="must")]
CASES = [
    (ExtractRequirements, {"query": "red kettle 1.7l"}, []),
    (WriteGuidelines, {"query": "red kettle", "requirements": REQUIREMENTS}, []),
    (
        RelevanceJudge().judge.predict.signature,
        {"query": "red kettle", "guidelines": GENERIC_GUIDELINES.render(), "product": "<product>\nTitle: Kettle\n</product>"},
        [dspy.Example(query="lamp", guidelines="g", product="<product>p</product>", reasoning="r", label="irrelevant")],
    ),
    (DescribeImage, {"image": dspy.Image("https://example.com/kettle.png")}, []),
]


@pytest.mark.parametrize(("signature", "inputs", "demos"), CASES)
def test_the_messages_are_dspys_own(signature, inputs, demos):
    ours, theirs = JSONAdapter(), dspy.JSONAdapter()
    for _ in range(2):  # the second time, the system message comes from the cache
        assert ours.format(signature, demos, inputs) == theirs.format(signature, demos, inputs)


@pytest.mark.parametrize(("signature", "inputs", "demos"), CASES)
def test_every_model_but_a_grammar_constrained_one_reads_dspys_messages(signature, inputs, demos):
    for spec in (ModelSpec(name="openai/gpt-4o-mini"), ModelSpec(name="openai/qwen", api_base="http://127.0.0.1:8000/v1")):
        handle = ModelHandle(spec)
        assert handle.prompt_format == "dspy" and "prompt_format" not in handle.identity
        assert handle.adapter().format(signature, demos, inputs) == dspy.JSONAdapter().format(signature, demos, inputs)


def test_the_embedded_model_reads_field_descriptions_not_templates():
    handle = ModelHandle(ModelSpec())
    assert handle.prompt_format == "grammar" and isinstance(handle.adapter(), GrammarJSONAdapter)
    signature, inputs, _ = CASES[2]
    human_demo = dspy.Example(query="lamp", guidelines="g", product="<product>p</product>", label="irrelevant")  # no reasoning
    messages = GrammarJSONAdapter().format(signature, [human_demo], inputs)
    text = "\n".join(m["content"] for m in messages)
    assert "{reasoning}" not in text and "{label}" not in text and "{query}" not in text
    assert "Not supplied" not in text  # the demo shows the fields it has, and no filler for the one it lacks
    assert "- reasoning: one or two sentences" in messages[0]["content"]
    assert "- label: one of irrelevant, acceptable_substitute, highly_relevant" in messages[0]["content"]
    assert messages[2]["content"] == '{\n  "label": "irrelevant"\n}'


@pytest.mark.parametrize("mode", ["json_object", "json_schema", "llama_cpp", "none"])
@pytest.mark.parametrize(("signature", "inputs", "demos"), CASES[:3])
def test_the_response_format_is_dspys_own_and_made_once(signature, inputs, demos, mode):
    """Chosen once per signature and model (it built a schema model on every call), and the same as DSPy chooses."""
    lm = ModelHandle(ModelSpec(name="openai/qwen", api_base="http://127.0.0.1:8000/v1", structured_output=mode)).build()
    adapter = JSONAdapter()
    first, second, theirs = {}, {}, {}
    adapter._prepare_response_format(lm, first, signature)
    adapter._prepare_response_format(lm, second, signature)
    dspy.JSONAdapter()._prepare_response_format(lm, theirs, signature)
    assert first.keys() == theirs.keys() and first.get("response_format") is second.get("response_format")
    ours, dspys = first.get("response_format"), theirs.get("response_format")
    if isinstance(dspys, type):  # a schema model, which DSPy builds anew each time: the same name and schema
        assert (ours.__name__, ours.model_json_schema()) == (dspys.__name__, dspys.model_json_schema())
    else:
        assert ours == dspys


def test_the_tool_fields_remembered_per_signature_are_dspys_answers():
    """Which fields carry tools and tool calls is worked out once per signature; the answers are DSPy's."""

    class CallsTools(dspy.Signature):
        question: str = dspy.InputField()
        tools: list[dspy.Tool] = dspy.InputField()
        calls: dspy.ToolCalls = dspy.OutputField()

    ours, theirs = JSONAdapter(), dspy.JSONAdapter()
    for signature, _, _ in [*CASES, (CallsTools, None, None)]:
        for _ in range(2):  # worked out, then remembered
            assert ours._get_tool_call_output_field_name(signature) == theirs._get_tool_call_output_field_name(signature)
            assert ours._get_tool_call_input_field_name(signature) == theirs._get_tool_call_input_field_name(signature)
    assert (ours._get_tool_call_input_field_name(CallsTools), ours._get_tool_call_output_field_name(CallsTools)) == ("tools", "calls")

"""Every model but a grammar-constrained one reads DSPy's own JSONAdapter messages; the grammar adapter shows the
embedded model no template and no filler to copy, and keeps a refining attempt's prompt prefix."""

import dspy
import pytest

from rae.config import ModelSpec
from rae.lm.adapter import GrammarJSONAdapter
from rae.lm.factory import ModelHandle
from rae.programs.describe import DescribeImage
from rae.programs.guidelines import GENERIC_GUIDELINES, WriteGuidelines
from rae.programs.judge import RelevanceJudge
from rae.programs.refine import HINT, HINT_DESCRIPTION, HINT_FIELD
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


def test_a_refining_attempt_keeps_the_first_attempts_system_message_and_prefix():
    """The grammar adapter leaves a refining attempt's hint out of the system message and puts it last, saying what it
    is: the attempt's prompt is the first's up to the end of the listing (llama.cpp evaluates only what follows), and
    no reminder of the output format comes after the inputs."""
    signature, inputs, _ = CASES[2]
    adapter = GrammarJSONAdapter()
    first = adapter.format(signature, [], inputs)
    hinted = adapter.format(signature.append(HINT_FIELD, HINT), [], {**inputs, HINT_FIELD: "echoes the prompt"})
    assert hinted[0] == first[0]
    assert hinted[-1]["content"].startswith(first[-1]["content"])
    assert hinted[-1]["content"].endswith(f"[[ ## {HINT_FIELD} ## ]]\n{HINT_DESCRIPTION}: echoes the prompt")
    assert "Respond with" not in first[-1]["content"]

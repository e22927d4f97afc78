"""rae's JSONAdapter builds exactly the messages DSPy's own does: the store keys and compiled programs rely on it."""

import dspy
import pytest

from rae.lm.adapter import JSONAdapter
from rae.programs.describe import DescribeImage
from rae.programs.guidelines import GENERIC_GUIDELINES, WriteGuidelines
from rae.programs.judge import JudgeRelevance
from rae.programs.requirements import ExtractRequirements, Requirement

REQUIREMENTS = [Requirement(name="product type", value="kettle", importance="must")]
CASES = [
    (ExtractRequirements, {"query": "red kettle 1.7l"}, []),
    (WriteGuidelines, {"query": "red kettle", "requirements": REQUIREMENTS}, []),
    (
        dspy.ChainOfThought(JudgeRelevance).predict.signature,
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

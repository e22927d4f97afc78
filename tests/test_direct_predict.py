"""The judge's direct call (``rae.lm.direct_predict``) is DSPy's call without the module layers: same request, same
prediction, same trace; and it steps aside whenever a skipped layer would have done something."""

import json

import dspy
import pytest
from dspy.utils.callback import BaseCallback

from rae.annotate.refine import Hinted
from rae.bench.fake_server import FakeServer
from rae.config import ModelSpec
from rae.lm.adapter import JSONAdapter
from rae.lm.direct_predict import predicted
from rae.lm.factory import ModelHandle
from rae.programs.guidelines import GENERIC_GUIDELINES
from rae.programs.judge import RelevanceJudge

INPUTS = {"query": "red kettle", "guidelines": GENERIC_GUIDELINES.render(), "product": "<product>A red kettle, 1.7 l</product>"}


class Counting(BaseCallback):
    def __init__(self) -> None:
        self.modules = 0

    def on_module_start(self, call_id, instance, inputs) -> None:
        self.modules += 1


class WatchedJudge(RelevanceJudge):
    def __init__(self) -> None:
        super().__init__()
        self.forwards = 0

    def forward(self, **inputs):
        self.forwards += 1
        return super().forward(**inputs)


def served_lm(server: FakeServer, mode: str = "json_object") -> dspy.LM:
    return ModelHandle(ModelSpec(name="openai/served-model", api_base=server.url, timeout_s=2, structured_output=mode)).build()


def judge_with_demo(chain_of_thought: bool = True) -> RelevanceJudge:
    judge = RelevanceJudge(chain_of_thought=chain_of_thought)
    demo = {"query": "steel kettle", "guidelines": "g", "product": "a steel kettle", "label": "highly_relevant"}
    if chain_of_thought:
        demo["reasoning"] = "It is one."
    judge.direct_predictor.demos = [dspy.Example(**demo)]
    return judge


@pytest.mark.parametrize("mode", ["json_object", "json_schema"])
@pytest.mark.parametrize("chain_of_thought", [True, False])
def test_the_direct_call_sends_and_returns_what_the_module_call_does(mode, chain_of_thought):
    judge = judge_with_demo(chain_of_thought)
    with FakeServer() as server:
        lm = served_lm(server, mode)
        for adapter in (JSONAdapter(), Hinted(JSONAdapter(), "the reasoning repeated the listing")):
            for model in (lm, lm.copy(temperature=0.3, seed=2)):
                with dspy.context(lm=model, adapter=adapter, trace=[]):
                    direct = predicted(judge, INPUTS)
                    direct_trace = list(dspy.settings.trace)
                with dspy.context(lm=model, adapter=adapter, trace=[]):
                    through_modules = judge(**INPUTS)
                    module_trace = list(dspy.settings.trace)
                assert direct.toDict() == through_modules.toDict()
                assert [(p, i, o.toDict()) for p, i, o in direct_trace] == [(p, i, o.toDict()) for p, i, o in module_trace]
                assert direct_trace[0][0] is judge.direct_predictor
        bodies = [json.dumps(body) for body in server.recorded.bodies]
    assert len(bodies) == 8
    for first, second in zip(bodies[::2], bodies[1::2], strict=True):
        assert first == second


def test_the_direct_call_is_taken_only_when_the_module_layers_have_nothing_to_do():
    judge = judge_with_demo()
    with FakeServer() as server:
        lm = served_lm(server)
        counting = Counting()
        judge.callbacks = [counting]
        with dspy.context(lm=lm, adapter=JSONAdapter()):
            predicted(judge, INPUTS)
        assert counting.modules == 1  # a module's own callback: the module is called
        judge.callbacks, judge.judge.callbacks = [], [counting]
        with dspy.context(lm=lm, adapter=JSONAdapter()):
            predicted(judge, INPUTS)
        assert counting.modules == 2  # a callback on the chain of thought in between, too
        judge.judge.callbacks, counting.modules = [], 1

        judge.callbacks = []
        with dspy.context(lm=lm, adapter=JSONAdapter(), callbacks=[counting]):
            predicted(judge, INPUTS)
            predicted(judge, {**INPUTS, "query": ["red", "kettle"]})
        assert counting.modules == 1 + 3 + 3  # a global callback: each call runs the three modules

        counting.modules = 0
        judge.callbacks = [counting]
        with dspy.context(lm=lm, adapter=JSONAdapter()), dspy.context(track_usage=True):
            predicted(judge, INPUTS)
        assert counting.modules == 1

        watched = WatchedJudge()
        with dspy.context(lm=lm, adapter=JSONAdapter()):
            predicted(watched, INPUTS)
            assert watched.forwards == 0  # nothing to do: the module layers were skipped
            predicted(watched, {**INPUTS, "query": ["red", "kettle"]})
            assert watched.forwards == 1  # not a string: DSPy's checks run
        assert len(server.recorded.bodies) == 7


def test_the_image_judge_and_dspys_own_lms_go_through_the_modules():
    assert RelevanceJudge(sees_image=True).direct_predictor is None
    judge = judge_with_demo()
    counting = Counting()
    judge.callbacks = [counting]
    scripted = dspy.utils.DummyLM([{"reasoning": "It is red.", "label": "highly_relevant"}])
    with dspy.context(lm=scripted, adapter=dspy.ChatAdapter()):
        assert predicted(judge, INPUTS).label == "highly_relevant"
    assert counting.modules == 1

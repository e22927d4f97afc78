"""One program, one route: the DSPy module a user compiles is the module ``rae annotate`` runs, with its own
``forward``; its checks and refining attempts are the module's, so an optimizer traces them too."""

import dspy

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.optimize.compile import Budget
from rae.optimize.run import compile_program
from rae.programs.annotator import Annotator
from rae.programs.guidelines import GENERIC_GUIDELINES
from tests.scripted import default_answer, field_text


class Cautious(Annotator):
    """A team's own program: it overrides ``forward`` only (not ``aforward``), and calls no product highly relevant."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def forward(self, query, product, guidelines=None, image=None):
        self.seen.append(product)
        judged = super().forward(query, product, guidelines, image)
        label = "acceptable_substitute" if judged.label == "highly_relevant" else judged.label
        return dspy.Prediction(**{**dict(judged.items()), "label": label})


def test_a_subclass_forward_is_the_one_a_run_calls(scripted, store, model, tiny):
    program = Cautious()
    run = AnnotationRun(Judging(program, CacheThrough(store), model, scripted), tiny.catalog, workers=4, progress=False)
    summary = run.run(tiny.pairs())
    assert summary.judged == 12 and len(program.seen) == 12  # its forward ran for every pair
    labels = {outcome.value.label for outcome in run.outcomes.values()}
    assert "highly_relevant" not in labels and "acceptable_substitute" in labels  # and what it returned is what was stored


def test_the_compiled_module_is_what_runs(scripted, store, model, tiny):
    """A program compiled with demos: the run's judge prompts carry them, through the same module."""
    examples = [
        dspy.Example(query="desk lamp", guidelines=GENERIC_GUIDELINES.render(), product="<product>\nTitle: Floor lamp\n</product>",
                     label="acceptable_substitute").with_inputs("query", "guidelines", "product")
    ]
    compiled = compile_program(Annotator(), "labeled", examples, [], Budget(labeled_demos=1))
    AnnotationRun(Judging(compiled, CacheThrough(store), model, scripted), tiny.catalog, progress=False).run(tiny.pairs()[:2])
    judged = [r for r in scripted.requests if "label" in r.config.response_format["schema"]["properties"]]
    assert judged and all(any("Floor lamp" in (m.text or "") for m in r.messages) for r in judged)


def test_the_modules_checks_and_refining_are_what_an_optimizer_traces(engine):
    """Called as an optimizer calls it (``forward``, no store), the program refines a placeholder reasoning itself."""
    def script(stage, request):
        answer = default_answer(stage, request)
        if stage == "judgment" and not field_text(request, "hint_"):
            return {**answer, "reasoning": "Not supplied for this particular example."}
        return answer

    engine.script = script
    with dspy.context(trace=[]):
        judged = Annotator()(query="red kettle", product="<product>\nTitle: Red kettle 1.7l\n</product>")
        traced = dspy.settings.trace
    assert judged.status == "ok" and judged.validation.first_try == "DSPy's filler for a missing field" and judged.validation.final is None
    assert "appear" in judged.reasoning  # the refining attempt's content was kept
    assert len(traced) == 4  # requirements, guidelines, and the judge twice: every call the optimizer would trace

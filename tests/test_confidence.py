import pytest
from sqlalchemy import select

from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.config import ConfigError, ModelSpec, Settings
from rae.programs.annotator import Annotator
from rae.store.schema import JudgmentRow
from rae.workspace import Workspace
from tests.scripted import default_answer


def wavering(stage, request):
    """Greedy: the word-overlap label. Sampled (temperature > 0): the seed decides, so samples disagree."""
    answer = default_answer(stage, request)
    if stage == "judgment" and (request.config.temperature or 0) > 0:
        answer = {**answer, "label": ["highly_relevant", "irrelevant", "highly_relevant", "acceptable_substitute"][request.config.seed % 4]}
    return answer


def sampling(store, model, scripted, samples: int) -> Judging:
    return Judging(Annotator(samples=samples), CacheThrough(store), model, scripted, confidence="samples")


def test_sampled_confidence_is_the_agreement_of_the_samples_with_the_greedy_label(scripted, store, model, tiny):
    scripted.script = wavering
    summary = AnnotationRun(sampling(store, model, scripted, 5), tiny.catalog, progress=False).run(tiny.pairs())
    assert summary.lm_calls["judgment"] == 12 * 5  # each pair: the judgment and four samples
    with store.session() as session:
        rows = list(session.scalars(select(JudgmentRow)))
    assert {r.confidence_method for r in rows} == {"samples"}
    for row in rows:
        assert abs(sum(row.probabilities.values()) - 1) < 1e-9
        assert row.confidence == row.probabilities[row.label]
    p1 = next(r for r in rows if r.product_id == "p1")  # greedy highly_relevant; samples: seeds 1..4
    assert p1.probabilities == {"highly_relevant": 0.6, "irrelevant": 0.2, "acceptable_substitute": 0.2}  # seeds 1-4: i, h, a, h


def test_measuring_confidence_later_pays_only_for_the_samples(scripted, store, model, tiny):
    """The greedy judgment is the same request with or without samples: stored once, and the samples (each their own
    seed, so their own requests) are all a later run pays for."""
    pairs = tiny.pairs()[:2]
    AnnotationRun(Judging(Annotator(), CacheThrough(store), model, scripted), tiny.catalog, progress=False).run(pairs)
    again = AnnotationRun(sampling(store, model, scripted, 3), tiny.catalog, progress=False).run(pairs)
    assert again.lm_calls["judgment"] == 2 * 2 and again.judged == 2


def test_the_embedded_model_measures_its_own_probabilities_and_a_server_model_needs_samples():
    assert Workspace(Settings()).confidence == "probabilities"
    assert Workspace(Settings(model=ModelSpec(name="openai/gpt-4o-mini"))).confidence == "none"
    with pytest.raises(ConfigError, match="gives no label probabilities: set confidence = 'samples'"):
        _ = Workspace(Settings(model=ModelSpec(name="openai/gpt-4o-mini"), confidence="probabilities")).confidence

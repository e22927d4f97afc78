"""The whole judging program, composed: requirements and guidelines once per query, a judgment per pair.

This module is the program: DSPy's optimizers trace and compile it, and ``rae annotate`` runs it (its ``forward``, or
``aforward``), so the checks, the refining attempts and the fall-back to the generic rubric that it holds are what
both see. ``guidelines_for`` does a query's work once; ``forward`` takes its result, so a run writes a query's
guidelines once and every product, engine and rerun reuses them. Called with a query and a product alone (as an
optimizer does), ``forward`` writes the query's guidelines itself; every LM call goes through the store, so that costs
nothing the second time.
"""

from dataclasses import dataclass, field

import dspy

from rae.config import GuidelineMode, JudgeMode
from rae.programs.describe import ImageDescriber
from rae.programs.guidelines import GENERIC_GUIDELINES, Guidelines, GuidelineWriter, guidelines_from
from rae.programs.judge import RelevanceJudge
from rae.programs.product_text import with_visual_description
from rae.programs.refine import Refinement
from rae.programs.requirements import Requirement, RequirementExtractor


@dataclass(frozen=True)
class Degenerate:
    """A stage whose output said nothing, and why."""

    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.reason}"


@dataclass(frozen=True)
class QueryGuidelines:
    """What the judge reads for a query: written for it, or the generic rubric (by choice, or because the query's
    requirements or guidelines said nothing: ``degenerate`` says which and why). ``failed``: the requirements or the
    guidelines did not parse, so the query's products cannot be judged."""

    guidelines: Guidelines | None
    requirements: list[Requirement] = field(default_factory=list)
    degenerate: Degenerate | None = None
    error: str | None = None
    written: dspy.Prediction | None = field(default=None, compare=False)  # what the guideline writer answered, if it was asked

    @property
    def status(self) -> str:
        return "ok" if self.guidelines is not None else "failed"

    @property
    def ok(self) -> bool:
        return self.guidelines is not None


class Annotator(dspy.Module):
    """``judge_mode``: the judge reads the product text only; the text and a visual description of the image
    (written once per image by ``describer``); or the text and the image itself (``image_judge``; a product without
    an image is judged from its text by ``judge``)."""

    def __init__(
        self, guidelines: GuidelineMode = "query", chain_of_thought: bool = True, judge_mode: JudgeMode = "text",
        refinement: Refinement = Refinement(), samples: int = 1,
    ):
        super().__init__()
        self.guideline_mode = guidelines
        self.judge_mode = judge_mode
        self.requirements = RequirementExtractor(refinement)
        self.guidelines = GuidelineWriter(refinement)
        self.judge = RelevanceJudge(chain_of_thought=chain_of_thought, refinement=refinement, samples=samples)
        self.describer = ImageDescriber(refinement)
        if judge_mode == "image":
            self.image_judge = RelevanceJudge(chain_of_thought=chain_of_thought, sees_image=True, refinement=refinement, samples=samples)

    def with_refinement(self, refinement: Refinement) -> "Annotator":
        """A copy that makes at most ``refinement.attempts`` calls a step (a batch makes one)."""
        copy = self.deepcopy()
        for module in (copy.requirements, copy.guidelines, copy.judge, copy.describer, getattr(copy, "image_judge", None)):
            if module is not None:
                module.refinement = refinement
        return copy

    @property
    def writes_guidelines(self) -> bool:
        return self.guideline_mode == "query"

    def guidelines_for(self, query: str) -> QueryGuidelines:
        if not self.writes_guidelines:
            return QueryGuidelines(GENERIC_GUIDELINES)
        requirements = self.requirements(query=query)
        settled = _settled_by(requirements)
        return settled or _written(requirements, self.guidelines(query=query, requirements=requirements.requirements))

    async def aguidelines_for(self, query: str) -> QueryGuidelines:
        if not self.writes_guidelines:
            return QueryGuidelines(GENERIC_GUIDELINES)
        requirements = await self.requirements.acall(query=query)
        settled = _settled_by(requirements)
        return settled or _written(requirements, await self.guidelines.acall(query=query, requirements=requirements.requirements))

    def forward(self, query: str, product: str, guidelines: QueryGuidelines | None = None, image: dspy.Image | None = None) -> dspy.Prediction:
        guidelines = guidelines or self.guidelines_for(query)
        if not guidelines.ok:
            return _unjudged(guidelines)
        described = self.describer(image=image) if self._describes(image) else None
        listing, visual = _seen(product, image, described, self.judge_mode)
        judge = self.image_judge if visual == "image" else self.judge
        judgment = judge(query=query, guidelines=guidelines.guidelines.render(), product=listing, **_image(visual, image))
        return _annotated(judgment, guidelines, visual, described)

    async def aforward(
        self, query: str, product: str, guidelines: QueryGuidelines | None = None, image: dspy.Image | None = None
    ) -> dspy.Prediction:
        guidelines = guidelines or await self.aguidelines_for(query)
        if not guidelines.ok:
            return _unjudged(guidelines)
        described = await self.describer.acall(image=image) if self._describes(image) else None
        listing, visual = _seen(product, image, described, self.judge_mode)
        judge = self.image_judge if visual == "image" else self.judge
        judgment = await judge.acall(query=query, guidelines=guidelines.guidelines.render(), product=listing, **_image(visual, image))
        return _annotated(judgment, guidelines, visual, described)

    def _describes(self, image: dspy.Image | None) -> bool:
        return self.judge_mode == "description" and image is not None


def _settled_by(requirements: dspy.Prediction) -> QueryGuidelines | None:
    """The query's guidelines when its requirements already decide them (they failed, or said nothing); else None."""
    if requirements.status == "failed":
        return QueryGuidelines(None, error=f"requirements: {requirements.error}")
    if requirements.status == "degenerate":
        return QueryGuidelines(GENERIC_GUIDELINES, degenerate=Degenerate("requirements", requirements.error))
    return None


def _written(requirements: dspy.Prediction, written: dspy.Prediction) -> QueryGuidelines:
    stated = list(requirements.requirements)
    if written.status == "failed":
        return QueryGuidelines(None, stated, error=f"guidelines: {written.error}", written=written)
    if written.status == "degenerate":
        return QueryGuidelines(GENERIC_GUIDELINES, stated, degenerate=Degenerate("guidelines", written.error), written=written)
    return QueryGuidelines(guidelines_from(written), stated, written=written)


def _seen(product: str, image: dspy.Image | None, described: dspy.Prediction | None, mode: JudgeMode) -> tuple[str, str]:
    """The listing the judge reads, and what it sees of the image: ``none``, a ``description`` of it, or the ``image``."""
    if mode == "image" and image is not None:
        return product, "image"
    if described is not None and described.status == "ok":
        return with_visual_description(product, described.description), "description"
    return product, "none"


def _image(visual: str, image: dspy.Image | None) -> dict[str, dspy.Image]:
    return {"image": image} if visual == "image" else {}


def _unjudged(guidelines: QueryGuidelines) -> dspy.Prediction:
    return dspy.Prediction(label=None, reasoning=None, status="no_guidelines", error=guidelines.error, query_guidelines=guidelines,
                           visual="none", calls_before_judge=0, kept=0, calls=0)


def _annotated(judgment: dspy.Prediction, guidelines: QueryGuidelines, visual: str, described: dspy.Prediction | None) -> dspy.Prediction:
    """The judgment with what it read: the query's guidelines, the visual it saw; ``kept`` counts the description's calls."""
    before = described.calls if described is not None else 0
    fields = dict(judgment.items())
    fields.setdefault("reasoning", None)
    return dspy.Prediction(**{**fields, "query_guidelines": guidelines, "visual": visual, "calls_before_judge": before,
                              "kept": before + judgment.kept, "calls": before + judgment.calls})

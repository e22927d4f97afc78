"""The whole judging program, composed: requirements and guidelines once per query, a judgment per pair.

``Annotator.forward`` runs the steps in one go, which is what DSPy's optimizers trace. An annotation run
(``rae.annotate``) calls the same sub-modules one step at a time with the store between them, so that a query's
guidelines are written once and reused by every product, engine and rerun.
"""

import dspy

from rae.config import GuidelineMode, JudgeMode
from rae.programs.describe import ImageDescriber
from rae.programs.guidelines import GENERIC_GUIDELINES, Guidelines, GuidelineWriter, guidelines_from
from rae.programs.hashing import program_hash
from rae.programs.judge import RelevanceJudge
from rae.programs.requirements import Requirement, RequirementExtractor


class Annotator(dspy.Module):
    """``judge_mode``: the judge reads the product text only; the text and a visual description of the image
    (written once per image by ``describer``); or the text and the image itself (``image_judge``; a product without
    an image is judged from its text by ``judge``)."""

    def __init__(self, guidelines: GuidelineMode = "query", chain_of_thought: bool = True, judge_mode: JudgeMode = "text"):
        super().__init__()
        self.guideline_mode = guidelines
        self.judge_mode = judge_mode
        self.requirements = RequirementExtractor()
        self.guidelines = GuidelineWriter()
        self.judge = RelevanceJudge(chain_of_thought=chain_of_thought)
        self.describer = ImageDescriber()
        if judge_mode == "image":
            self.image_judge = RelevanceJudge(chain_of_thought=chain_of_thought, sees_image=True)

    @property
    def writes_guidelines(self) -> bool:
        return self.guideline_mode == "query"

    def stage_hashes(self) -> dict[str, str]:
        """The program hash of each stage, as the store keys carry it: a stage whose predictor changed (new demos, new
        instructions) gets a new hash, and a stage that did not keeps its stored work."""
        hashes = {
            "requirements": program_hash(self.requirements),
            "guidelines": program_hash(self.guidelines),
            "judgment": program_hash(self.judge),
            "description": program_hash(self.describer),
        }
        if self.judge_mode == "image":
            hashes["image_judgment"] = program_hash(self.image_judge)
        return hashes

    def guidelines_for(self, query: str) -> tuple[list[Requirement], Guidelines]:
        if not self.writes_guidelines:
            return [], GENERIC_GUIDELINES
        requirements = self.requirements(query=query).requirements
        return requirements, guidelines_from(self.guidelines(query=query, requirements=requirements))

    def forward(self, query: str, product: str) -> dspy.Prediction:
        requirements, guidelines = self.guidelines_for(query)
        judgment = self.judge(query=query, guidelines=guidelines.render(), product=product)
        return dspy.Prediction(
            label=judgment.label,
            reasoning=getattr(judgment, "reasoning", ""),
            requirements=requirements,
            guidelines=guidelines,
        )

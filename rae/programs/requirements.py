"""Step 2: what a query asks for. A list of requirements, each with an importance, that the guidelines build on.

The extractor checks its own output (``rae.programs.validators``): a list that is empty, repeats itself, or is made of
placeholders is asked for again (``rae.programs.refine``), and given up as ``degenerate`` if it stays so.
"""

from typing import Literal

import dspy
from pydantic import BaseModel, Field

from rae.programs.refine import Attempts, Refinement, aattempted, attempted, seed_of
from rae.programs.validators import requirements_problem


class Requirement(BaseModel):
    name: str = Field(description="the attribute: product type, brand, colour, size, material, pattern, audience, quantity, ...")
    value: str = Field(description="what the query asks for that attribute, in the query's own terms")
    importance: Literal["must", "should", "nice"] = Field(
        description="must: a product without it is not what was asked; should: it matters, but a substitute may lack it; "
        "nice: a mild preference"
    )


class ExtractRequirements(dspy.Signature):
    """List what a shopper who typed this search query into an online shop asks of a product: its type, and every
    brand, colour, size, material, pattern, audience, quantity or other attribute the query names or clearly implies."""

    query: str = dspy.InputField(desc="the search query, as the shopper typed it")
    requirements: list[Requirement] = dspy.OutputField(desc="one entry per attribute, the product type first")


class RequirementExtractor(dspy.Module):
    """Extracts a query's requirements once; every product judged for the query reuses them through the guidelines."""

    def __init__(self, refinement: Refinement = Refinement()):
        super().__init__()
        self.extract = dspy.Predict(ExtractRequirements)
        self.refinement = refinement

    def forward(self, query: str) -> dspy.Prediction:
        return attempted(self.extract, self._attempts(query))

    async def aforward(self, query: str) -> dspy.Prediction:
        return await aattempted(self.extract, self._attempts(query))

    def _attempts(self, query: str) -> Attempts:
        def check(prediction: dspy.Prediction, hints: list[str]) -> str | None:
            return requirements_problem(query, prediction.requirements, hints)

        return Attempts(self.extract.signature, {"query": query}, check, self.refinement, seed_of(self.extract))

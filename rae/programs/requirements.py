"""Step 2: what a query asks for. A list of requirements, each with an importance, that the guidelines build on."""

from typing import Literal

import dspy
from pydantic import BaseModel, Field


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

    def __init__(self):
        super().__init__()
        self.extract = dspy.Predict(ExtractRequirements)

    def forward(self, query: str) -> dspy.Prediction:
        return self.extract(query=query)

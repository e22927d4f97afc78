"""Step 3: query-specific annotation guidelines, one paragraph per label, written from the query's requirements.

The paper found that guidelines written for the query, rather than one generic rubric, added about five points of
agreement with humans. ``GENERIC_GUIDELINES`` is the rubric the ablation compares against, and the one a query falls
back to when its own guidelines (or the requirements they build on) say nothing: the writer checks its output
(``rae.programs.validators``), asks again with the reason (``rae.programs.refine``), and gives up honestly.
"""

from dataclasses import dataclass, field

import dspy

from rae.programs.refine import Attempts, Refinement, aattempted, attempted, seed_of
from rae.programs.requirements import Requirement
from rae.programs.validators import guidelines_problem, prompt_sentences


@dataclass(frozen=True)
class Guidelines:
    highly_relevant: str
    acceptable_substitute: str
    irrelevant: str
    # Where they come from: written for the query, or the generic rubric (by choice, or because the query's were
    # degenerate). Not part of the text the judge reads.
    source: str = field(default="query", compare=False)

    def by_label(self) -> dict[str, str]:
        return {"highly_relevant": self.highly_relevant, "acceptable_substitute": self.acceptable_substitute, "irrelevant": self.irrelevant}

    @property
    def written_for_the_query(self) -> bool:
        return self.source == "query"

    def render(self) -> str:
        """The text the judge reads."""
        return (
            f"highly_relevant: {self.highly_relevant}\n"
            f"acceptable_substitute: {self.acceptable_substitute}\n"
            f"irrelevant: {self.irrelevant}"
        )


GENERIC_GUIDELINES = Guidelines(
    highly_relevant="The product is what the query asks for and meets every requirement the query states.",
    acceptable_substitute=(
        "The product is not exactly what was asked for but could serve the same need: it differs in a minor "
        "attribute such as size, colour, quantity or brand (when the brand is not essential to the query)."
    ),
    irrelevant=(
        "The product does not answer the query: it is another kind of product, it fails an essential requirement "
        "(such as a brand or size the query insists on), or it is only an accessory or complement of the requested item."
    ),
    source="generic",
)


class WriteGuidelines(dspy.Signature):
    """Write annotation guidelines for judging the products a search engine returns for this query. Be concrete:
    name the product types, brands and attribute values that decide each label for this query."""

    query: str = dspy.InputField(desc="the search query, as the shopper typed it")
    requirements: list[Requirement] = dspy.InputField(desc="what the query asks of a product, with importance")
    highly_relevant: str = dspy.OutputField(desc="what a product must be to be highly relevant: it meets every 'must' requirement")
    acceptable_substitute: str = dspy.OutputField(
        desc="what makes a product an acceptable substitute: the right kind of product that misses a 'should' requirement "
        "or differs in a way a shopper could accept"
    )
    irrelevant: str = dspy.OutputField(
        desc="what makes a product irrelevant: another product type, a broken 'must' requirement, or an accessory or "
        "complement of the requested item"
    )


class GuidelineWriter(dspy.Module):
    def __init__(self, refinement: Refinement = Refinement()):
        super().__init__()
        self.write = dspy.Predict(WriteGuidelines)
        self.refinement = refinement

    def forward(self, query: str, requirements: list[Requirement]) -> dspy.Prediction:
        return attempted(self.write, self._attempts(query, requirements))

    async def aforward(self, query: str, requirements: list[Requirement]) -> dspy.Prediction:
        return await aattempted(self.write, self._attempts(query, requirements))

    def _attempts(self, query: str, requirements: list[Requirement]) -> Attempts:
        sentences = prompt_sentences(self.write.signature)

        def check(prediction: dspy.Prediction, hints: list[str]) -> str | None:
            return guidelines_problem(query, guidelines_from(prediction).by_label(), [*sentences, *hints])

        inputs = {"query": query, "requirements": requirements}
        return Attempts(self.write.signature, inputs, check, self.refinement, seed_of(self.write))


def guidelines_from(prediction: dspy.Prediction) -> Guidelines:
    return Guidelines(
        highly_relevant=prediction.highly_relevant,
        acceptable_substitute=prediction.acceptable_substitute,
        irrelevant=prediction.irrelevant,
    )

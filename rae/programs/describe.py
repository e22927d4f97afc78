"""Step 5: a visual description of a product image, written once per image by a multimodal model.

The judge reads the description beside the product text. A description is keyed on the request that carries the
image (by its hash), so a packshot shared by several products, or met by several queries, is described once. A
description that says nothing is asked for again (``rae.programs.refine``), and left out if it stays so.
"""

import dspy

from rae.programs.refine import Attempts, Refinement, aattempted, attempted, seed_of
from rae.programs.validators import text_problem


class DescribeImage(dspy.Signature):
    """Describe this product photo for a judge who cannot see it. Say only what is visible."""

    image: dspy.Image = dspy.InputField(desc="the product photo")
    description: str = dspy.OutputField(
        desc="product type, colours, pattern, material, shape, visible text and brand marks, in a few sentences"
    )


class ImageDescriber(dspy.Module):
    def __init__(self, refinement: Refinement = Refinement()):
        super().__init__()
        self.describe = dspy.Predict(DescribeImage)
        self.refinement = refinement

    def forward(self, image: dspy.Image) -> dspy.Prediction:
        return attempted(self.describe, self._attempts(image))

    async def aforward(self, image: dspy.Image) -> dspy.Prediction:
        return await aattempted(self.describe, self._attempts(image))

    def _attempts(self, image: dspy.Image) -> Attempts:
        def check(prediction: dspy.Prediction, hints: list[str]) -> str | None:
            return text_problem(prediction.description, prompt=hints)

        return Attempts(self.describe.signature, {"image": image}, check, self.refinement, seed_of(self.describe))

"""Step 5: a visual description of a product image, written once per image by a multimodal model.

The judge reads the description beside the product text. Descriptions are stored by the image's content hash, so
a packshot shared by several products, or met by several queries, is described once.
"""

import dspy


class DescribeImage(dspy.Signature):
    """Describe this product photo for a judge who cannot see it. Say only what is visible."""

    image: dspy.Image = dspy.InputField(desc="the product photo")
    description: str = dspy.OutputField(
        desc="product type, colours, pattern, material, shape, visible text and brand marks, in a few sentences"
    )


class ImageDescriber(dspy.Module):
    def __init__(self):
        super().__init__()
        self.describe = dspy.Predict(DescribeImage)

    def forward(self, image: dspy.Image) -> dspy.Prediction:
        return self.describe(image=image)

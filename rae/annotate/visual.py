"""What the judge sees of a product's image: nothing, a visual description of it, or the image itself.

The judge mode says which. A product with no usable image (none in the catalog, offline, not an image) is judged from
its text whatever the mode, and the judgment records that it saw ``none``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from rae.annotate.spending import Spend
from rae.config import JudgeMode
from rae.datasets.records import Product
from rae.store.images import FetchedImage, ImageCache


@dataclass
class Visual:
    """``kind`` is ``none``, ``description`` or ``image``; what writing the description cost, if it was written now."""

    kind: str
    description: str | None = None
    image: FetchedImage | None = None
    spend: Spend = field(default_factory=Spend)


DescriptionStep = Callable[[FetchedImage], tuple[str | None, Spend]]  # (the description, or None if it failed; its cost)


def visual_for(product: Product, mode: JudgeMode, images: ImageCache | None, describe: DescriptionStep) -> Visual:
    if mode == "text" or images is None:
        return Visual("none")
    image = images.image(product.image)
    if not image.ok:
        return Visual("none")
    if mode == "image":
        return Visual("image", image=image)
    description, spend = describe(image)
    if description is None:
        return Visual("none", spend=spend)
    return Visual("description", description=description, spend=spend)

"""The product as the judge reads it: chosen fields, in order, within a character budget, delimited as data.

The budget keeps prompts short (cost, and the embedded model's speed); the fields and the budget are settings, and
part of what the store keys a judgment on, so changing either never reuses a judgment made on other text.
"""

from rae.config import ProductTextSpec
from rae.datasets.records import Product

FIELD_NAMES = {
    "title": "Title",
    "brand": "Brand",
    "color": "Colour",
    "category": "Category",
    "bullets": "Features",
    "description": "Description",
    "price": "Price",
}
OPEN, CLOSE = "<product>", "</product>"


def product_text(product: Product, spec: ProductTextSpec = ProductTextSpec(), visual_description: str = "") -> str:
    """The listing, field by field, cut at ``spec.budget`` characters; a visual description, when given, goes last."""
    lines: list[str] = []
    left = spec.budget
    for name in spec.fields:
        value = _field_value(product, name)
        if not value or left <= 0:
            continue
        line = f"{FIELD_NAMES[name]}: {value}"
        if len(line) > left:
            line = line[: max(left - 3, 0)].rstrip() + "..."
        lines.append(line)
        left -= len(line) + 1
    if visual_description:
        lines.append(f"Image (as described): {visual_description.strip()}")
    if not spec.delimit:
        return "\n".join(lines)
    body = "\n".join(lines).replace(OPEN, "").replace(CLOSE, "")
    return f"{OPEN}\n{body}\n{CLOSE}"


def seller_text(product: Product) -> str:
    """Everything in the listing that the seller wrote: where instructions to the judge would hide."""
    return "\n".join([product.title, product.brand, product.bullets, product.description])


def _field_value(product: Product, name: str) -> str:
    if name == "category":
        return " > ".join(product.category)
    if name == "price":
        return f"{product.price:.2f}" if product.price is not None else ""
    value = getattr(product, name)
    return " ".join(str(value).split())


def with_visual_description(listing: str, description: str) -> str:
    """A listing (as ``product_text`` made it) with a visual description of the product's image, last, where
    ``product_text(..., visual_description=...)`` would have put it."""
    line = f"Image (as described): {description.strip()}"
    closing = f"\n{CLOSE}"
    if listing.endswith(closing):
        return f"{listing[: -len(closing)]}\n{line.replace(OPEN, '').replace(CLOSE, '')}{closing}"
    return f"{listing}\n{line}" if listing else line

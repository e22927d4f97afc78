"""Load a product catalog from a team's own file, with configurable column names."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rae.datasets.readers import DataFileError, Row, read_rows
from rae.datasets.records import Product


@dataclass(frozen=True)
class CatalogColumns:
    """Which column of the file holds each product field. The defaults are the bundled ESCI catalog's.

    Only ``product_id`` and ``title`` are required; a column that a file lacks leaves that field empty.
    """

    product_id: str = "asin"
    title: str = "title"
    brand: str = "brand"
    color: str = "color"
    category: str = "category"
    bullets: str = "bullet_points"
    description: str = "description"
    image: str = "image"
    price: str = "price"


Catalog = dict[str, Product]


def load_catalog(path: Path | str, columns: CatalogColumns = CatalogColumns()) -> Catalog:
    """Products by id. A product id that appears twice is an error: two texts for one product make judgments ambiguous."""
    catalog: Catalog = {}
    first_seen: dict[str, int] = {}
    for row in read_rows(path, required=(columns.product_id, columns.title)):
        product = _product(path, row, columns)
        if product.product_id in first_seen:
            raise DataFileError(
                path, row.line, f"product {product.product_id!r} already appears on line {first_seen[product.product_id]}"
            )
        first_seen[product.product_id] = row.line
        catalog[product.product_id] = product
    return catalog


def _product(path: Path | str, row: Row, columns: CatalogColumns) -> Product:
    return Product(
        product_id=str(row.get(columns.product_id)).strip(),
        title=_text(row.get(columns.title)),
        brand=_text(row.get(columns.brand)),
        color=_text(row.get(columns.color)),
        category=_category(row.get(columns.category)),
        bullets=_text(row.get(columns.bullets)),
        description=_text(row.get(columns.description)),
        image=_text(row.get(columns.image)) or None,
        price=_price(path, row, columns.price),
    )


# What other tools call a product's fields (a Quepid case's columns, a book's document_fields), by rae's names; the
# first name found wins (a Quepid document's ``title`` before its ``name``)
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "title": ("title", "name", "product_title"),
    "brand": ("brand", "product_brand"),
    "color": ("color", "colour", "product_color"),
    "category": ("category", "categories"),
    "bullets": ("bullets", "bullet_points", "bullet_point", "features"),
    "description": ("description", "product_description"),
    "image": ("image", "image_url", "thumb", "thumbnail"),
    "price": ("price",),
}


def product_from_fields(product_id: str, fields: Mapping[str, Any]) -> Product | None:
    """A product from another tool's fields, those whose name names one of rae's (any case, spaces or dashes for
    underscores); None without a title, which is the least a judge needs. A price that is not a number is left out:
    a peer's display field, not a catalog's."""
    named = {str(k).strip().lower().replace(" ", "_").replace("-", "_"): v for k, v in fields.items()}
    value = {field: next((named[n] for n in names if _text(named.get(n))), None) for field, names in FIELD_NAMES.items()}
    if not _text(value["title"]):
        return None
    try:
        price = _amount(value["price"])
    except ValueError:
        price = None
    return Product(product_id=product_id, title=_text(value["title"]), brand=_text(value["brand"]), color=_text(value["color"]),
                   category=_category(value["category"]), bullets=_text(value["bullets"]), description=_text(value["description"]),
                   image=_text(value["image"]) or None, price=price)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value if v is not None)
    return str(value).strip()


def _category(value: Any) -> tuple[str, ...]:
    """A category path, root first: a list, or a string such as ``"Home > Kitchen > Towels"``."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if v is not None and str(v).strip())
    text = str(value)
    separator = ">" if ">" in text else "|"
    return tuple(part.strip() for part in text.split(separator) if part.strip())


def _price(path: Path | str, row: Row, column: str) -> float | None:
    value = row.get(column)
    try:
        return _amount(value)
    except ValueError:
        raise DataFileError(path, row.line, f"price {value!r} is not a number") from None


def _amount(value: Any) -> float | None:
    """A price as a number ("$1,299.00" is 1299.0); None when empty, ValueError when it is not a number."""
    if value is None or str(value).strip() == "":
        return None
    return float(str(value).replace("$", "").replace(",", "").strip())

"""Products an imported judgment file showed, for the pairs whose products the catalog does not have.

A team's Quepid book or detailed CSV carries each document's title and the fields the case shows; kept here, they let
rae judge those pairs (``rae agreement --with-reviews``, the review page) without a catalog file for them. The
catalog's own text always wins (``rae.workspace.Workspace.labelled``).
"""

from dataclasses import asdict

from sqlalchemy import select

from rae.datasets.records import Product
from rae.store.schema import ImportedProductRow
from rae.store.store import Store


def save_products(store: Store, products: list[Product], source: str) -> int:
    """Keep each product's text; a product imported before takes the newer text. One transaction."""
    with store.session() as session, session.begin():
        for product in products:
            session.merge(ImportedProductRow(product_id=product.product_id, fields=asdict(product), source=source))
    return len(products)


def imported_products(store: Store) -> dict[str, Product]:
    with store.session() as session:
        rows = session.scalars(select(ImportedProductRow)).all()
    return {row.product_id: Product(**{**row.fields, "category": tuple(row.fields.get("category") or ())}) for row in rows}

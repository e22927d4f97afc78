"""Human labels given on the review page: saved the moment they are given, every reviewer kept.

A reviewer who changes their mind adds a row; their latest label for a pair is the one that counts, and the history
stays. Joining them to the labelled set is ``datasets.labelled_set.with_reviews``.
"""

from sqlalchemy import select

from rae.datasets.records import ReviewLabel
from rae.labels import Label
from rae.store.schema import HumanLabelRow
from rae.store.store import Store


def save_label(
    store: Store, query_id: str, query: str, product_id: str, label: Label, reviewer: str, note: str = "", item_id: int | None = None
) -> None:
    with store.session() as session, session.begin():
        session.add(
            HumanLabelRow(query_id=query_id, query=query, product_id=product_id, label=str(label), reviewer=reviewer, note=note, item_id=item_id)
        )


def latest_reviews(store: Store) -> list[ReviewLabel]:
    """Each reviewer's latest label for each pair."""
    with store.session() as session:
        rows = session.scalars(select(HumanLabelRow).order_by(HumanLabelRow.created_at, HumanLabelRow.id)).all()
    latest: dict[tuple[str, str, str], HumanLabelRow] = {}
    for row in rows:
        latest[(row.query_id, row.product_id, row.reviewer)] = row
    return [ReviewLabel(r.query_id, r.query, r.product_id, Label(r.label), r.reviewer, r.note, r.created_at) for r in latest.values()]

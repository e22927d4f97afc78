"""Raters' labels in the store: the review page's, saved the moment they are given, and imported judgment lists.

A rater who changes their mind adds a row; their latest label for a pair is the one that counts, and the history
stays. Joining human labels to the labelled set is ``datasets.labelled_set.with_reviews``. Labels imported as another
LLM's (``rater_kind = "llm"``) are a rater's too, but never counted as human labels.
"""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from rae.datasets.records import Rating
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


def save_ratings(store: Store, labels: Iterable[Rating], source: str, kind: str = "human") -> int:
    """Store imported labels, each as its rater's; one transaction. Returns how many were stored."""
    rows = [
        HumanLabelRow(query_id=r.query_id, query=r.query, product_id=r.product_id, label=str(r.label), reviewer=r.rater,
                      note=r.note, source=source, rater_kind=kind)
        for r in labels
    ]
    with store.session() as session, session.begin():
        session.add_all(rows)
    return len(rows)


def latest_ratings(store: Store, kind: str = "human", before: datetime | None = None) -> list[Rating]:
    """Each rater's latest label for each pair (human raters by default: reviewers and imported human labels); with
    ``before``, as they stood then."""
    with store.session() as session:
        query = select(HumanLabelRow).where(HumanLabelRow.rater_kind == kind).order_by(HumanLabelRow.created_at, HumanLabelRow.id)
        if before is not None:
            query = query.where(HumanLabelRow.created_at < before)
        rows = session.scalars(query).all()
    latest: dict[tuple[str, str, str], HumanLabelRow] = {}
    for row in rows:
        latest[(row.query_id, row.product_id, row.reviewer)] = row
    return [Rating(r.query_id, r.query, r.product_id, Label(r.label), rater=r.reviewer, note=r.note, created_at=r.created_at) for r in latest.values()]

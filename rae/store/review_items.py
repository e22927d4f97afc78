"""Review queues: pairs put before human reviewers, in order, each with why it was queued."""

from dataclasses import dataclass

from sqlalchemy import func, select

from rae.store.schema import HumanLabelRow, ReviewItemRow
from rae.store.store import Store


@dataclass(frozen=True)
class Item:
    """A pair to put in a queue: which, why, and the judgment it was queued for (its record's key), if any."""

    query_id: str
    query: str
    product_id: str
    source: str
    reason: str
    judgment: str | None = None


def items_of(store: Store, queue: str) -> list[ReviewItemRow]:
    with store.session() as session:
        return list(session.scalars(select(ReviewItemRow).where(ReviewItemRow.queue == queue).order_by(ReviewItemRow.position)))


def queued_pairs(store: Store, queue: str) -> set[tuple[str, str]]:
    return {(item.query_id, item.product_id) for item in items_of(store, queue)}


def add_items(store: Store, queue: str, items: list[Item]) -> list[ReviewItemRow]:
    """Append items to a queue (a pair already in it is skipped), in one transaction; the rows added."""
    with store.session() as session, session.begin():
        queued = {(r.query_id, r.product_id) for r in session.scalars(select(ReviewItemRow).where(ReviewItemRow.queue == queue))}
        start = session.scalar(select(func.coalesce(func.max(ReviewItemRow.position), 0)).where(ReviewItemRow.queue == queue))
        new = [item for item in items if (item.query_id, item.product_id) not in queued]
        rows = [
            ReviewItemRow(queue=queue, position=start + i + 1, query_id=item.query_id, query=item.query, product_id=item.product_id,
                          source=item.source, reason=item.reason, judgment=item.judgment)
            for i, item in enumerate(new)
        ]
        session.add_all(rows)
    return rows


def labelled_items(store: Store, reviewer: str) -> set[int]:
    """The queue items a reviewer has labelled."""
    with store.session() as session:
        return set(session.scalars(select(HumanLabelRow.item_id).where(HumanLabelRow.reviewer == reviewer)))

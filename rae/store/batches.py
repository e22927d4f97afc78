"""The batches rae sent to a batch API or wrote to a file, as the store records them (``BatchRow``)."""

from sqlalchemy import select

from rae.store.schema import BatchRow
from rae.store.store import Store


def all_batches(store: Store) -> list[BatchRow]:
    """Every batch, newest first."""
    with store.session() as session:
        return list(session.scalars(select(BatchRow).order_by(BatchRow.created_at.desc())))


def open_batches(store: Store, provider: str | None = None) -> list[BatchRow]:
    """Batches whose answers are not stored yet (of one provider: ``api`` or ``file``), oldest first."""
    query = select(BatchRow).where(BatchRow.stored.is_(False)).order_by(BatchRow.created_at)
    if provider is not None:
        query = query.where(BatchRow.provider == provider)
    with store.session() as session:
        return list(session.scalars(query))

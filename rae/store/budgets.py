"""A run's budget in the store: its ledger opened, read, and a batch's requests reserved in order (the ledger's own
statements are ``rae.store.ledger``'s, run inside the store's transactions)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from rae.store.ledger import Hold, Reservation, reserve
from rae.store.schema import BudgetRow
from rae.store.store import Store


def open_budget(store: Store, limit_usd: float) -> str:
    """A new ledger with this limit; its id is what every process and node of the run reserves against."""
    budget_id = uuid.uuid4().hex
    store.replace(BudgetRow(budget_id=budget_id, limit_usd=limit_usd, spent_usd=0.0, reserved_usd=0.0, calls=0, refused=0,
                            created_at=datetime.now(UTC)))
    return budget_id


def budget_row(store: Store, budget_id: str) -> Any:
    """The ledger's row as of now (limit, spent, reserved, calls, refused)."""
    table = BudgetRow.__table__
    with store.engine.connect() as connection:
        return connection.execute(select(table).where(table.c.budget_id == budget_id)).first()


def reserve_each(store: Store, reservations: dict[str, Reservation]) -> list[str]:
    """Reserve for each key in turn, in one transaction; the keys whose reservation fit (the first refusal ends it:
    what follows would be refused too, or sent out of order)."""
    held: list[str] = []
    with store.engine.begin() as connection:
        for key, reservation in reservations.items():
            if reserve(connection, reservation) is not Hold.HELD:
                break
            held.append(key)
    return held

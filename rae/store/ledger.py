"""The spending ledger of a run (``budgets``): a reservation before a call, its settlement after.

Every statement is one conditional ``UPDATE`` of the budget's row, atomic on SQLite (one writer at a time) and on
PostgreSQL (the row is locked and the condition evaluated again under the lock), so processes and nodes sharing the
store share one limit. These run inside the transaction that claims a key or stores its answer (``Store.exchange``):
a reservation costs no round trip of its own.
"""

from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Connection, select, update

from rae.store.schema import BudgetRow

SLACK_USD = 1e-12  # float sums: a reservation that fits exactly is not refused by a rounding error


@dataclass(frozen=True)
class Reservation:
    """The most a call can cost, to be held against a budget before it is sent."""

    budget_id: str
    amount: float


class Hold(Enum):
    """What the ledger answers a reservation: held; not now (it fits once calls in flight settle, and the caller has
    some of its own to wait for); refused (it would pass the limit even if every call in flight cost nothing, or the
    caller has nothing of its own in flight to wait for)."""

    HELD = "held"
    WAIT = "wait"
    REFUSED = "refused"


@dataclass(frozen=True)
class Settlement:
    """A reservation given back and what the call really cost (None: unknown, so the reservation counts as spent)."""

    budget_id: str
    reserved: float
    cost: float | None


def reserve(connection: Connection, reservation: Reservation, may_wait: bool = False) -> Hold:
    """Hold the amount if spent plus reserved stays within the limit. Otherwise a caller with calls of its own in flight
    (``may_wait``) waits while spent alone leaves room: refusing it would stop a run with most of its budget unspent,
    held for a moment by reservations that settle at a fraction of them. Anything else is refused, and counted."""
    table = BudgetRow.__table__
    mine = table.c.budget_id == reservation.budget_id
    held = connection.execute(
        update(table)
        .where(mine, table.c.spent_usd + table.c.reserved_usd + reservation.amount <= table.c.limit_usd + SLACK_USD)
        .values(reserved_usd=table.c.reserved_usd + reservation.amount)
    ).rowcount == 1
    if held:
        return Hold.HELD
    if may_wait and connection.execute(
        select(table.c.spent_usd + reservation.amount <= table.c.limit_usd + SLACK_USD).where(mine)
    ).scalar():
        return Hold.WAIT
    connection.execute(update(table).where(mine).values(refused=table.c.refused + 1))
    return Hold.REFUSED


def reserve_in_turn(connection: Connection, reservations: dict[str, Reservation], in_flight: bool) -> dict[str, Hold]:
    """Each key's reservation in turn. While the claimant has calls in flight (from before, or held earlier in this
    turn), a reservation that does not fit may wait for them to settle (``Hold.WAIT``) instead of being refused."""
    holds: dict[str, Hold] = {}
    for key, reservation in reservations.items():
        holds[key] = reserve(connection, reservation, may_wait=in_flight)
        in_flight = in_flight or holds[key] is Hold.HELD
    return holds


def settle(connection: Connection, settlement: Settlement) -> None:
    table = BudgetRow.__table__
    cost = settlement.reserved if settlement.cost is None else settlement.cost
    connection.execute(
        update(table).where(table.c.budget_id == settlement.budget_id).values(
            reserved_usd=table.c.reserved_usd - settlement.reserved, spent_usd=table.c.spent_usd + cost, calls=table.c.calls + 1)
    )

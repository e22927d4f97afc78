"""The cache-through protocol behind every LM call: serve what is stored, and otherwise let exactly one payer pay,
within the budget.

Many calls in flight (a run's), many threads (an optimizer's) and many claimants (runs in other processes or on other
nodes, or a second workspace in this process) may need the same key at once: two products with one listing, two
engines returning one product, two commands on one store. For each key:

1. In this process, one caller asks the store for a key at a time, whichever thread or event loop it is on; the others
   wait for it (single flight) and get its answer.
2. A stored answer is served (a hit): nothing is paid, nothing claimed, nothing reserved.
3. Otherwise, in the same transaction, the key is claimed, read again after the claim (the previous holder may have
   stored its answer and let go between the first read and the claim: serving it keeps the key from being paid
   twice), and the call's most possible cost reserved against the run's budget (``rae.store.ledger``). A claim held
   by anyone else is waited for, claiming again between pauses, until the answer appears or the claim ends. A call the
   budget cannot cover while this claimant's own calls in flight hold part of it waits for them, claiming again between
   pauses (they reserved their most possible cost and settle at what they cost, which gives room back); a call the
   budget cannot cover even so is not claimed and not sent (``OverBudget``).
4. Only then is the call paid for; its answer is stored, the claim let go and the reservation settled with what the
   call cost, in one transaction of the gateway's next group, which the caller does not wait for (it holds the answer;
   a waiter elsewhere finds it once committed; a kill loses at most the answers in that group, as it loses the calls in
   flight). A call that failed lets go of its claim and settles at nothing, unless it timed out (the server may have
   billed it) or was cancelled (it may have been sent): then its reservation counts as spent.

This is written once, on an event loop. A call from a thread (an optimizer's ``forward``) runs the same protocol on a
loop of its own (``run_to_completion``). Every store step goes through the store's gateway, which groups the
transactions of the calls in flight.
"""

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from dspy.utils.exceptions import LMError

from rae.lm.retry import TIMEOUTS
from rae.store.gateway import Gateway
from rae.store.ledger import Reservation, Settlement
from rae.store.schema import LMCallRow
from rae.store.store import Store

CLAIM_LEASE_S = 600.0  # longer than any call with its retries; a dead holder on this host is seen at once
CLAIM_POLL_S = 0.2
T = TypeVar("T")


class OverBudget(LMError):
    """Not an answer: the run's budget cannot cover this call's most possible cost, so it was not sent."""


@dataclass(frozen=True)
class Through:
    """A key's answer (a stored ``lm_calls`` row, or the values just stored), and whether this caller paid for it."""

    answer: Any
    paid: bool


class CacheThrough:
    def __init__(self, store: Store, lease_s: float = CLAIM_LEASE_S, poll_s: float = CLAIM_POLL_S):
        self.store = store
        self.gateway = Gateway(store)
        self.owner = uuid.uuid4().hex  # this executor, as the holder of claims
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._flights: dict[str, Future] = {}
        self._lock = threading.Lock()

    def lookup(self, key: str) -> Any:
        return self.store.get(LMCallRow, key)

    async def alookup(self, key: str) -> Any:
        return await self.gateway.read(key)

    async def athrough(self, key: str, pay: Callable[[], Awaitable[dict[str, Any]]], reservation: Reservation | None = None) -> Through:
        """The key's answer: from the store, or paid for by ``pay`` exactly once among everyone sharing the store."""
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None
            if leading:
                flight = self._flights[key] = Future()
        if not leading:  # someone in this process is asking for this key: its answer is ours
            return Through(await asyncio.shield(asyncio.wrap_future(flight)), paid=False)
        try:
            through = await self._once(key, pay, reservation)
            flight.set_result(through.answer)
            return through
        except BaseException as error:
            flight.set_exception(error)
            raise
        finally:
            with self._lock:
                del self._flights[key]

    def through(self, key: str, pay: Callable[[], dict[str, Any]], reservation: Reservation | None = None) -> Through:
        """``athrough``, for a call from a thread: ``pay`` blocks."""

        async def paying() -> dict[str, Any]:
            return pay()

        return run_to_completion(self.athrough(key, paying, reservation))

    async def _once(self, key: str, pay: Callable[[], Awaitable[dict[str, Any]]], reservation: Reservation | None) -> Through:
        while True:
            claim = await self.gateway.read_or_claim(key, self.owner, self.lease_s, reservation)
            if claim.row is not None:
                return Through(claim.row, paid=False)
            if claim.refused:
                raise OverBudget(f"the budget cannot cover this call (up to ${reservation.amount:.6f}): not sent")
            if claim.held:
                break
            await asyncio.sleep(self.poll_s)  # someone else is paying for this key, or our calls in flight hold the budget
        try:
            answer = await pay()
        except BaseException as error:
            await asyncio.shield(self.gateway.release(key, self.owner, _unpaid(reservation, error)))
            raise
        settlement = Settlement(reservation.budget_id, reservation.amount, answer.get("cost_usd")) if reservation is not None else None
        self.gateway.put_answer(answer, self.owner, settlement)
        return Through(answer, paid=True)

    def grouped_on_this_loop(self) -> AbstractContextManager:
        """For a run's event loop: its store traffic grouped on the loop itself where that is faster (``Gateway``)."""
        return self.gateway.grouped_on_this_loop()

    def flush(self) -> None:
        """Wait until every answer paid so far is stored (the caller of a call does not wait for it)."""
        self.gateway.flush()

    def close(self) -> None:
        self.gateway.close()


def _unpaid(reservation: Reservation | None, error: BaseException) -> Settlement | None:
    """A failed call's settlement: nothing spent, unless it timed out or was cancelled (then, for all rae knows, it was
    billed, so its reservation counts as spent)."""
    if reservation is None:
        return None
    billed = isinstance(error, TIMEOUTS) or not isinstance(error, Exception)
    return Settlement(reservation.budget_id, reservation.amount, None if billed else 0.0)


def run_to_completion(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, also where an event loop already runs in this thread (a
    notebook): then on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()

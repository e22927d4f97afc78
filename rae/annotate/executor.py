"""The cache-through protocol behind every LM call: serve what is stored, and otherwise let exactly one payer pay.

Many calls in flight (a run's), many threads (an optimizer's) and many claimants (runs in other processes or on other
nodes, or a second workspace in this process) may need the same key at once: two products with one listing, two
engines returning one product, two commands on one store. For each key:

1. In this process, one caller asks the store for a key at a time; the others wait for it (single flight) and get
   its answer.
2. A stored answer is served (a hit): nothing is paid, and nothing is claimed.
3. Otherwise, in the same transaction, the key is claimed and read again after the claim: the previous holder may have
   stored its answer and let go between the first read and the claim, and serving that answer is what keeps a key
   from being paid twice. A claim held by anyone else (another process, or another executor of this process) is
   waited for, claiming again between pauses, until the answer appears or the claim ends (stored, expired, or its
   process died).
4. Only then is the call paid for; its answer is stored and the claim let go in one transaction.

A key is paid once, whoever asks, except for a call in flight in a process that was killed (its claim is taken over,
and the call made again). Calls on an event loop go through the store's gateway (``rae.store.gateway``), which groups
their transactions; calls from threads use their own short transactions.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rae.store.gateway import Gateway
from rae.store.schema import LMCallRow
from rae.store.store import Store

CLAIM_LEASE_S = 600.0  # longer than any call with its retries; a dead holder on this host is seen at once
CLAIM_POLL_S = 0.2


@dataclass(frozen=True)
class Through:
    """A key's answer (a stored ``lm_calls`` row, or the values just stored), and whether this caller paid for it."""

    answer: Any
    paid: bool


class CacheThrough:
    def __init__(self, store: Store, lease_s: float = CLAIM_LEASE_S, poll_s: float = CLAIM_POLL_S):
        self.store = store
        self.gateway = Gateway(store)
        self.owner = uuid.uuid4().hex  # this executor's calls on an event loop, as the holder of claims
        self.thread_owner = uuid.uuid4().hex  # and its calls from threads: the two never hold one key together
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._flights: dict[str, asyncio.Future] = {}
        self._thread_flights: dict[str, _Flight] = {}
        self._thread_lock = threading.Lock()

    def lookup(self, key: str) -> Any:
        return self.store.get(LMCallRow, key)

    async def alookup(self, key: str) -> Any:
        return await self.gateway.read(key)

    async def athrough(self, key: str, pay: Callable[[], Awaitable[dict[str, Any]]]) -> Through:
        """The key's answer: from the store, or paid for by ``pay`` exactly once among everyone sharing the store."""
        flight = self._flights.get(key)
        if flight is not None:  # someone in this process is asking for this key: its answer is ours
            return Through(await asyncio.shield(flight), paid=False)
        flight = self._flights[key] = asyncio.get_running_loop().create_future()
        try:
            through = await self._athrough(key, pay)
            flight.set_result(through.answer)
            return through
        except BaseException as error:
            flight.set_exception(error)
            flight.exception()  # retrieved: a flight nobody else joined must not be reported as unhandled
            raise
        finally:
            del self._flights[key]

    async def _athrough(self, key: str, pay: Callable[[], Awaitable[dict[str, Any]]]) -> Through:
        while True:
            claim = await self.gateway.read_or_claim(key, self.owner, self.lease_s)
            if claim.row is not None:
                return Through(claim.row, paid=False)
            if claim.held:
                break
            await asyncio.sleep(self.poll_s)  # someone else is paying for this key: wait for its answer
        try:
            answer = await pay()
        except BaseException:
            await asyncio.shield(self.gateway.release(key, self.owner))
            raise
        await self.gateway.put_answer(answer, self.owner)
        return Through(answer, paid=True)

    def through(self, key: str, pay: Callable[[], dict[str, Any]]) -> Through:
        """``athrough``, for a call from a thread."""
        with self._thread_flight(key):
            while True:
                claim = self.store.read_or_claim([key], self.thread_owner, self.lease_s)[key]
                if claim.row is not None:
                    return Through(claim.row, paid=False)
                if claim.held:
                    break
                time.sleep(self.poll_s)
            try:
                answer = pay()
            except BaseException:
                self.store.release([key], self.thread_owner)
                raise
            self.store.put_answers([answer], self.thread_owner)
            return Through(answer, paid=True)

    def close(self) -> None:
        self.gateway.close()

    @contextmanager
    def _thread_flight(self, key: str) -> Iterator[None]:
        """One thread of this executor per key at a time; the last one out forgets the key."""
        with self._thread_lock:
            flight = self._thread_flights.setdefault(key, _Flight())
            flight.users += 1
        flight.lock.acquire()
        try:
            yield
        finally:
            flight.lock.release()
            with self._thread_lock:
                flight.users -= 1
                if flight.users == 0:
                    del self._thread_flights[key]


@dataclass
class _Flight:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0

"""The cache-through protocol behind every paid step: serve what is stored, and otherwise let exactly one payer pay.

Many workers (threads of a run) and many claimants (runs in other processes, or a second workspace in this one) may
need the same key at once: two products with one image, two ids with one text, two engines returning one product,
two commands on one store. For each key:

1. One worker of this executor asks the store for a key at a time; the others wait for it (in-process
   single-flight), then ask in turn, and find its row.
2. A stored row that serves the step is returned (a hit): nothing is paid, and nothing is claimed.
3. Otherwise, in the same transaction, the worker claims the key and reads its row again, after the claim: the
   previous holder may have stored its row and released its claim between the first read and the claim, and
   serving that row is what keeps a key from being paid twice. A claim held by anyone else (another process, or
   another executor of this process) is waited for, claiming again between pauses, until the row appears or the
   claim ends (stored, expired, or its process died).
4. Only then is the call paid for; its row is stored and the claim released in one transaction.

A hit costs one read, and a miss two transactions (the read with the claim, the insert with the release). A key is
paid once, whoever asks, except for a call in flight in a process that was killed (its claim is taken
over, and the call made again). One executor serves a whole workspace: every step, run and command that workspace
builds shares it.
"""

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rae.annotate.spending import Spend
from rae.store.schema import LMCall
from rae.store.store import Store

Row = TypeVar("Row", bound=LMCall)
CLAIM_LEASE_S = 600.0  # longer than any call with its retries; a dead holder on this host is seen at once
CLAIM_POLL_S = 0.2


@dataclass
class Paid(Generic[Row]):
    """A row that a call just paid for, and what the call cost."""

    row: Row
    spend: Spend


@dataclass
class Through(Generic[Row]):
    """A key's row (None: not stored, and calls were not allowed), whether it came from the store, and what it cost."""

    row: Row | None
    cached: bool
    spend: Spend = field(default_factory=Spend)


class CacheThrough:
    def __init__(self, store: Store, lease_s: float = CLAIM_LEASE_S, poll_s: float = CLAIM_POLL_S):
        self.store = store
        self.owner = uuid.uuid4().hex  # this executor, as the holder of claims
        self.lease_s = lease_s
        self.poll_s = poll_s
        self._flights: dict[str, threading.Lock] = {}
        self._flights_lock = threading.Lock()

    def lookup(self, table: type[Row], fingerprint: str, retry_failed: bool = False) -> Row | None:
        """The stored row that serves the step, or None."""
        row = self.store.get(table, fingerprint)
        return row if _serves(row, retry_failed) else None

    def through(self, table: type[Row], fingerprint: str, pay: Callable[[], Paid[Row]], retry_failed: bool = False) -> Through[Row]:
        """The key's row: from the store, or paid for by ``pay`` exactly once among everyone sharing the store.

        A stored failure (or degenerate output) serves too, unless ``retry_failed``: then it is paid for again and
        replaced."""
        serves = functools.partial(_serves, retry_failed=retry_failed)
        with self._single_flight(fingerprint):
            while True:  # the stored row, or else the claim and the row as it stands once claimed, in one transaction
                claim = self.store.claim(fingerprint, self.owner, self.lease_s, reading=table, unless=serves)
                if serves(claim.row):  # stored, or stored meanwhile (perhaps by the last holder just before it let go)
                    if claim.held:
                        self.store.release(fingerprint, self.owner)
                    return Through(claim.row, cached=True)
                if claim.held:
                    break
                time.sleep(self.poll_s)  # someone else is paying for this key: wait for its result
            try:
                row = claim.row
                paid = pay()
                if row is not None:  # a stored failure being retried: replace it
                    self.store.replace(paid.row)
                    self.store.release(fingerprint, self.owner)
                else:
                    self.store.put(paid.row, release_claim_of=self.owner)
                return Through(paid.row, cached=False, spend=paid.spend)
            except BaseException:
                self.store.release(fingerprint, self.owner)
                raise

    @contextmanager
    def _single_flight(self, fingerprint: str) -> Iterator[None]:
        """One worker of this executor per key at a time."""
        with self._flights_lock:
            flight = self._flights.setdefault(fingerprint, _Flight())
            flight.users += 1
        flight.lock.acquire()
        try:
            yield
        finally:
            flight.lock.release()
            with self._flights_lock:
                flight.users -= 1
                if flight.users == 0:  # the last one out: a later worker starts a new flight
                    del self._flights[fingerprint]


@dataclass
class _Flight:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


def _serves(row: LMCall | None, retry_failed: bool) -> bool:
    """A stored row serves the step: a success, or a failure (unparseable or degenerate output) when failures are not
    to be retried."""
    return row is not None and not (row.status in ("failed", "degenerate") and retry_failed)

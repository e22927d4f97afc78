"""The store's hot path for a run with many calls in flight: their reads, claims and writes, grouped.

A run on one event loop may have hundreds of calls in flight, each needing its key read (or claimed) before the call
and its answer stored after it. A transaction each would pay a commit each; a thread each is what rae set out to
avoid. So the requests queue here, and whatever has queued is done in one transaction (``Store.exchange``), then every
waiter is answered at once; if that transaction fails, each kind is done on its own, and a request that still fails
fails alone. Nothing waits on a timer: a lone request is done at once, and a kill loses only what was in that one
transaction.

Where the group is done depends on where the database is. A server (PostgreSQL) answers over the network, so one
thread does the groups and the event loop never waits for it. A SQLite file answers without a network, in about a
millisecond a group, and a thread would cost more than that: each statement hands the interpreter lock to the loop's
calls and waits to get it back (a group took 9 ms of wall time for 2 ms of work, and a claim waited 22 ms for its
answer at 64 calls in flight). So on SQLite a run's loop (``grouped_on_this_loop``, for as long as the run lasts)
has its requests grouped on the loop itself, done once its turn has run every call that was ready, and the claims
answered on the loop with no thread between (a claim then waits 7 to 10 ms: ``make bench``, docs/throughput.md); the
block's end does what is left. Any other caller (a loop of one call, made for a thread's call) goes to the thread.
"""

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rae.store.database import StoreError
from rae.store.ledger import Reservation, Settlement
from rae.store.schema import Base, LMCallRow
from rae.store.store import Claim, Exchange, Store

GROUP = 256  # the most requests of one kind in a transaction


@dataclass
class _Request:
    kind: str  # read, claim, answer, release, record, flush
    payload: Any
    owner: str | None = None
    lease_s: float = 0.0
    ledger: Reservation | Settlement | None = None  # a claim's reservation, an answer's or a release's settlement
    future: Future = field(default_factory=Future)


class Gateway:
    def __init__(self, store: Store):
        self.store = store
        self.on_loop = store.dialect == "sqlite"  # a file, no network: its groups are done on the event loop
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failed: list[BaseException] = []
        self._pending: dict[asyncio.AbstractEventLoop, list[_Request]] = {}  # a run's loop -> its requests not yet done

    async def read(self, key: str) -> Any:
        """The key's stored answer, or None (nothing claimed: a lookup-only run)."""
        return await self._answered(_Request("read", key))

    async def read_or_claim(self, key: str, owner: str, lease_s: float, reservation: Reservation | None = None) -> Claim:
        return await self._answered(_Request("claim", key, owner, lease_s, reservation))

    def put_answer(self, row: dict[str, Any], owner: str | None, settlement: Settlement | None = None) -> Future:
        """Store an answer, let go of its claim and settle its reservation, in the next group's transaction; the caller
        need not wait (it holds the answer; a waiter elsewhere finds it once committed). A write that failed is
        reported by the next ``flush``."""
        return self._unattended(_Request("answer", row, owner, ledger=settlement))

    async def release(self, key: str, owner: str, settlement: Settlement | None = None) -> None:
        await self._answered(_Request("release", key, owner, ledger=settlement))

    def record(self, row: Base) -> Future:
        """Store a record (a judgment's, a query's) in place of any under its key; the caller need not wait."""
        return self._unattended(_Request("record", row))

    @contextmanager
    def grouped_on_this_loop(self) -> Iterator[None]:
        """While the block runs, the running loop's requests are grouped and done on the loop itself (a SQLite store;
        a server's stay on the thread); at its end, what is left of them is done."""
        if not self.on_loop:
            yield
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            self._pending.setdefault(loop, [])
        try:
            yield
        finally:
            with self._lock:
                left = self._pending.pop(loop, [])
            if left:
                self._do(left)

    def flush(self) -> None:
        """Wait until everything asked before now is done; raise the first write nobody waited for that failed."""
        self._to_thread(_Request("flush", None)).result()
        with self._lock:
            failed, self._failed = self._failed, []
        if failed:
            raise StoreError(f"{len(failed)} answers or records could not be stored: {failed[0]}")

    def _unattended(self, request: _Request) -> Future:
        """Submit a write nobody awaits; a failure is kept for ``flush``."""
        future = self._submit(request)
        future.add_done_callback(self._keep_failure)
        return future

    def _keep_failure(self, future: Future) -> None:
        if future.exception() is not None:
            with self._lock:
                self._failed.append(future.exception())

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    async def _answered(self, request: _Request) -> Any:
        """The request's answer, awaited on the running loop. A group done on this loop answers it without a hop
        through another thread's wake-up: the waiter is this loop's own future."""
        loop = asyncio.get_running_loop()
        if loop not in self._pending:
            return await asyncio.wrap_future(self._to_thread(request))
        waiter = loop.create_future()
        request.future.add_done_callback(lambda done: _settle(waiter, done))
        self._submit(request)
        return await waiter

    def _submit(self, request: _Request) -> Future:
        """Queue the request where its group will be done: on a run's loop that groups its own, else the thread."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            pending = self._pending.get(loop) if loop is not None else None
            if pending is not None:
                pending.append(request)
        if pending is None:
            return self._to_thread(request)
        if len(pending) == 1:
            loop.call_soon(self._drain, loop)  # after every callback that is ready now: their requests join the group
        return request.future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            group = self._pending.get(loop, [])
            if group:
                self._pending[loop] = []
        if group:
            self._do(group)

    def _to_thread(self, request: _Request) -> Future:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="rae-store", daemon=True)
                self._thread.start()
        self._queue.put(request)
        return request.future

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < 4 * GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # let the loop end after this group
                    break
                group.append(nxt)
            self._do(group)

    def _do(self, group: list[_Request]) -> None:
        by_kind: dict[str, list[_Request]] = {}
        for request in group:
            by_kind.setdefault(request.kind, []).append(request)
        if len(group) <= GROUP and self._exchange(by_kind):
            return
        # Answers and releases first: a claim in the same group then finds the answer instead of a claim to wait on.
        self._each_group(by_kind.get("answer", []), self._answers)
        self._each_group(by_kind.get("release", []), self._releases)
        self._each_group(by_kind.get("record", []), self._records)
        self._each_group(by_kind.get("claim", []), self._claims)
        self._each_group(by_kind.get("read", []), self._reads)
        for request in by_kind.get("flush", []):
            request.future.set_result(None)

    def _exchange(self, by_kind: dict[str, list[_Request]]) -> bool:
        """The whole group in one transaction; False (nothing answered) if it failed."""
        exchange = Exchange(
            answers=[(r.owner, r.payload, r.ledger) for r in by_kind.get("answer", [])],
            releases=[(r.owner, r.payload, r.ledger) for r in by_kind.get("release", [])],
            records=[r.payload for r in by_kind.get("record", [])],
            claims=[(r.owner, r.payload, r.lease_s, r.ledger) for r in by_kind.get("claim", [])],
            reads=[r.payload for r in by_kind.get("read", [])],
        )
        try:
            done = self.store.exchange(exchange)
        except Exception:
            return False
        for kind in ("answer", "release", "record", "flush"):
            for request in by_kind.get(kind, []):
                request.future.set_result(None)
        for request in by_kind.get("claim", []):
            request.future.set_result(done.claims[(request.owner, request.payload)])
        for request in by_kind.get("read", []):
            request.future.set_result(done.read.get(request.payload))
        return True

    def _each_group(self, requests: list[_Request], do: Callable[[list[_Request]], None]) -> None:
        for start in range(0, len(requests), GROUP):
            chunk = requests[start : start + GROUP]
            try:
                do(chunk)
            except Exception as error:  # one bad request must not fail the others: each on its own, once
                if len(chunk) == 1:
                    chunk[0].future.set_exception(error)
                    continue
                for request in chunk:
                    if not request.future.done():
                        self._each_group([request], do)

    def _answers(self, requests: list[_Request]) -> None:
        by_owner: dict[str | None, list[_Request]] = {}
        for request in requests:
            by_owner.setdefault(request.owner, []).append(request)
        for owner, own in by_owner.items():
            self.store.put_answers([r.payload for r in own], owner, [r.ledger for r in own if r.ledger is not None])
            for request in own:
                request.future.set_result(None)

    def _releases(self, requests: list[_Request]) -> None:
        for request in requests:
            self.store.release([request.payload], request.owner, [request.ledger] if request.ledger is not None else [])
            request.future.set_result(None)

    def _records(self, requests: list[_Request]) -> None:
        by_table: dict[str, list[_Request]] = {}
        for request in requests:
            by_table.setdefault(request.payload.__tablename__, []).append(request)
        for own in by_table.values():
            self.store.put_many([r.payload for r in own], replacing=True)
            for request in own:
                request.future.set_result(None)

    def _reads(self, requests: list[_Request]) -> None:
        rows = self.store.get_many(LMCallRow, [r.payload for r in requests])
        for request in requests:
            request.future.set_result(rows.get(request.payload))

    def _claims(self, requests: list[_Request]) -> None:
        by_owner: dict[tuple[str | None, float], list[_Request]] = {}
        for request in requests:
            by_owner.setdefault((request.owner, request.lease_s), []).append(request)
        for (owner, lease_s), own in by_owner.items():
            reservations = {r.payload: r.ledger for r in own if r.ledger is not None}
            claims = self.store.read_or_claim(list(dict.fromkeys(r.payload for r in own)), owner, lease_s, reservations)
            for request in own:
                request.future.set_result(claims[request.payload])


def _settle(waiter: asyncio.Future, done: Future) -> None:
    """Pass a done request's answer (or error) to the loop's waiter (it was done on that loop), unless the waiter was
    cancelled meanwhile."""
    if waiter.done():
        return
    if done.exception() is not None:
        waiter.set_exception(done.exception())
    else:
        waiter.set_result(done.result())

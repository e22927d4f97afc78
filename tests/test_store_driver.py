"""The store's hot statements on the driver: the same values as SQLAlchemy reads, the same errors, and a dropped
connection replaced instead of failing the run."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from rae.store.schema import ClaimRow, JudgmentRow
from rae.store.store import Store, StoreError


def judgment(fingerprint: str) -> JudgmentRow:
    return JudgmentRow(
        fingerprint=fingerprint, program_hash="p", model_id="m", input_hash="i", status="degenerate", error="a placeholder",
        validation={"first_try": "placeholder", "attempts": 3, "final": None}, raw_output='{"label": "irrelevant"}',
        attempts=3, input_tokens=812, output_tokens=40, cost_usd=0.000125, latency_s=0.25, run_id="r1",
        created_at=datetime(2026, 11, 29, 23, 40, 1, 123456, tzinfo=UTC), query_id="q1", query="red kettle", product_id="B01",
        label="irrelevant", reasoning=None, visual="none", guidelines_source="generic", flags="no_reasoning",
    )


def test_a_row_reads_back_as_sqlalchemy_reads_it(store):
    """Every column, through the column types' own processors: JSON, timestamps with their zone, floats, NULLs."""
    store.put(judgment("k"))
    fast = store.get(JudgmentRow, "k")
    with store.engine.connect() as connection:
        slow = connection.execute(select(JudgmentRow.__table__).where(JudgmentRow.fingerprint == "k")).one()
    assert fast._asdict() == slow._asdict()
    assert fast.validation == {"first_try": "placeholder", "attempts": 3, "final": None}
    assert fast.created_at.replace(tzinfo=UTC) == datetime(2026, 11, 29, 23, 40, 1, 123456, tzinfo=UTC)
    assert store.get(JudgmentRow, "not stored") is None


def test_a_claim_taken_over_is_written_as_sqlalchemy_writes_it(store):
    """The take-over of an expired claim binds the new lease through the column's type (a timestamp SQLite can order)."""
    past = datetime.now(UTC) - timedelta(seconds=5)
    with store.session() as session, session.begin():
        session.add(ClaimRow(fingerprint="k", owner="gone", host="elsewhere", pid=1, expires_at=past))
    assert store.claim("k", "me", lease_s=60).held
    with store.session() as session:
        claim = session.get(ClaimRow, "k")
        assert claim.owner == "me" and claim.expires_at.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(seconds=50)


def test_a_driver_error_is_raised_as_sqlalchemys_and_the_connection_is_reused(store):
    broken = judgment("k")
    broken.query = None
    with pytest.raises(IntegrityError):
        store.put(broken)
    assert store.put(judgment("k")) is True and store.get(JudgmentRow, "k").query == "red kettle"


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_connection_the_database_dropped_is_replaced(store):
    """A PostgreSQL restart (or an idle timeout) ends a kept connection: the next statement opens a new one."""
    store.put(judgment("k"))
    with store.engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        connection.commit()
    assert store.get(JudgmentRow, "k").label == "irrelevant"
    assert store.put(judgment("k2")) is True


def test_an_in_memory_store_is_refused_with_one_line():
    with pytest.raises(StoreError, match="in-memory"):
        Store("sqlite://")


def test_many_workers_share_a_bounded_number_of_connections(store):
    """64 workers in the store at once hold no more connections than the engine's pool would (PostgreSQL's default
    of 100 clients is shared by every process writing to the store); the others wait their turn, and all finish."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from rae.store.driver import MAX_CONNECTIONS, SQLITE_CONNECTIONS

    inside, most, lock = 0, 0, threading.Lock()

    def slow_lookup(transaction, i: int):
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)  # a statement waiting on the database
        with lock:
            inside -= 1
        return transaction.first(store._lookup(JudgmentRow), {"fingerprint": f"k{i}"})

    store.put(judgment("k1"))
    with ThreadPoolExecutor(64) as pool:
        found = list(pool.map(lambda i: store._driver.run(lambda t: slow_lookup(t, i)), range(256)))
    cap = store._driver.max_connections
    assert cap == (SQLITE_CONNECTIONS if store.dialect == "sqlite" else MAX_CONNECTIONS)
    assert most == cap and len(store._driver._opened) <= cap
    assert [row.fingerprint for row in found if row is not None] == ["k1"]


def test_a_forked_child_opens_its_own_connections_and_leaves_its_parents_open(store):
    """A child forked after the parent used the store (a worker process, a daemon) must not write on the parent's
    connections, and must not close them: it opens its own, claims under its own process id, and the parent goes on."""
    import os

    from rae.store.driver import process_id

    store.put(judgment("parent"))
    parents = list(store._driver._opened)
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report, then leave without running the parent's exit handlers
        try:
            claim = store.claim("child", "the child", lease_s=60)
            stored = store.put(judgment("child"), release_claim_of="the child")
            opened = store._driver._opened
            own = [c for c in opened if all(c is not p for p in parents)]
            report = f"{claim.held} {stored} {len(own) >= 1 and len(own) == len(opened)} {process_id() == os.getpid()}"
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as text
            report = f"error {exc!r}"
        os.write(writing, report.encode())
        os._exit(0)
    os.close(writing)
    report = os.read(reading, 1000).decode()
    os.waitpid(child, 0)
    assert report == "True True True True"
    assert process_id() == os.getpid() and store._driver._opened == parents
    assert store.get(JudgmentRow, "child").query == "red kettle" and store.put(judgment("parent 2")) is True

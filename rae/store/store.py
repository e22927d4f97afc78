"""The cache database: SQLite by default (a file under ``.rae/``, WAL), any SQLAlchemy URL (PostgreSQL) with the same code.

Each result is committed as soon as it exists, so a run killed midway loses at most the calls in flight. A row is
inserted once: if another process stored the same fingerprint first, the insert is skipped, never duplicated.

Claims say who is paying for a key right now. A claim belongs to one claimant (an ``annotate.executor.CacheThrough``,
of which a process may have several), never to a whole process: two claimants in one process wait for each other as
two processes do. The protocol that uses claims lives in ``rae.annotate.executor``; this module only keeps them.
"""

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, create_engine, delete, event, insert, inspect, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from rae.errors import RaeError
from rae.store.driver import DriverStatements, Prepared, Transaction, process_id
from rae.store.schema import Base, ClaimRow, LMCall, RunRow

Row = TypeVar("Row", bound=LMCall)
LOOKUP_CHUNK = 500
SCHEMA_ATTEMPTS = 5
ON_CONFLICT_DIALECTS = ("sqlite", "postgresql")  # an insert that skips a stored key, without an error
HOST = socket.gethostname()


class StoreError(RaeError, RuntimeError):
    pass


@dataclass(frozen=True)
class Claim(Generic[Row]):
    """The answer to a claim: whether the claimant now holds the key, and the key's stored row as of that moment."""

    held: bool
    row: Row | None = None


@dataclass
class RunRecord:
    """The run a command is recording: its id, and the counts it will be stored with when it finishes."""

    run_id: str
    counts: dict[str, Any] = field(default_factory=dict)


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._statements: dict[Any, Prepared] = {}
        self._driver = DriverStatements(self.engine)
        try:
            _create_schema(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {_safe(url)}: {exc.orig}") from None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self._sessions()

    def get(self, table: type[Row], fingerprint: str) -> Row | None:
        """The stored row, read-only (its columns as attributes). On the path of every lookup-only judgment (``rae
        evaluate``, ``rae agreement``), so it is one prepared statement on the driver (``rae.store.driver``), not an ORM
        session; a paying step reads its key in the claim's transaction instead (``claim(..., unless=...)``)."""
        return self._driver.run(lambda t: t.first(self._lookup(table), {"fingerprint": fingerprint}))

    def get_many(self, table: type[Row], fingerprints: Iterable[str]) -> dict[str, Row]:
        wanted = list(dict.fromkeys(fingerprints))
        found: dict[str, Row] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start : start + LOOKUP_CHUNK]
                for row in connection.execute(select(table.__table__).where(table.fingerprint.in_(chunk))):
                    found[row.fingerprint] = row
        return found

    def put(self, row: LMCall, release_claim_of: str | None = None) -> bool:
        """Insert a row unless its fingerprint is already stored. True if this call inserted it.

        Committed at once: a run killed a moment later has lost nothing it paid for. With ``release_claim_of``, that
        claimant's claim on the key ends in the same transaction."""
        insert_once, values = self._insert(row.__table__), _insertable(row)

        def work(transaction: Transaction) -> bool:
            try:
                inserted = transaction.rowcount(insert_once, values) == 1
            except self.engine.dialect.loaded_dbapi.IntegrityError:
                if self.dialect in ON_CONFLICT_DIALECTS:  # not a duplicate (that is skipped): a row that cannot be stored
                    raise
                inserted = False  # a dialect without ON CONFLICT: another process stored it first
            if release_claim_of is not None:
                transaction.rowcount(self._release(), {"fingerprint": row.fingerprint, "owner": release_claim_of})
            return inserted

        return self._driver.run(work)

    def claim(
        self, fingerprint: str, owner: str, lease_s: float, reading: type[Row] | None = None, unless: Callable[[Row], bool] | None = None
    ) -> "Claim[Row]":
        """Claim a key for ``owner`` before paying for it. Held if ``owner`` now holds it: nobody held it, or the holder's
        lease ran out, or the holder is a process on this host that no longer exists (a killed run). A claim held by
        another owner, in this process or another, is respected until then.

        With ``reading``, the key's row in that table is read in the claim's own transaction, after the claim: a row
        the previous holder stored just before releasing is seen. With ``unless`` as well, the row is read first, and a
        row that ``unless`` accepts is the answer, unclaimed: so a hit costs one read, and a miss one transaction (the
        read, the claim, the read again) instead of a lookup and then a claim."""

        def work(transaction: Transaction) -> Claim[Row]:
            if unless is not None and reading is not None:
                stored = transaction.first(self._lookup(reading), {"fingerprint": fingerprint})
                if stored is not None and unless(stored):
                    return Claim(False, stored)
            now = datetime.now(UTC)
            values = {"fingerprint": fingerprint, "owner": owner, "host": HOST, "pid": process_id(), "expires_at": now + timedelta(seconds=lease_s)}
            held = self._take_claim(transaction, values, now)
            row = transaction.first(self._lookup(reading), {"fingerprint": fingerprint}) if reading is not None else None
            return Claim(held, row)

        return self._driver.run(work)

    def _take_claim(self, transaction: Transaction, values: dict[str, Any], now: datetime) -> bool:
        if transaction.rowcount(self._insert(ClaimRow.__table__), values) == 1:
            return True
        holder = transaction.first(self._lookup(ClaimRow), values)
        if holder is None or holder.owner == values["owner"]:
            return holder is not None
        expires = holder.expires_at if holder.expires_at.tzinfo else holder.expires_at.replace(tzinfo=UTC)
        if expires > now and not (holder.host == HOST and not _alive(holder.pid)):
            return False
        taking = {"fingerprint": values["fingerprint"], "holder": holder.owner, "claimant": values["owner"], "claimant_host": HOST}
        return transaction.rowcount(self._take_over(), {**taking, "claimant_pid": values["pid"], "until": values["expires_at"]}) == 1

    def release(self, fingerprint: str, owner: str) -> None:
        self._driver.run(lambda t: t.rowcount(self._release(), {"fingerprint": fingerprint, "owner": owner}))

    def _release(self) -> Prepared:
        claims = ClaimRow.__table__
        return self._prepared("release", lambda: delete(claims).where(claims.c.fingerprint == bindparam("fingerprint"), claims.c.owner == bindparam("owner")))

    def _take_over(self) -> Prepared:
        claims = ClaimRow.__table__
        return self._prepared(
            "take over",
            lambda: update(claims)
            .where(claims.c.fingerprint == bindparam("fingerprint"), claims.c.owner == bindparam("holder"))
            .values(
                owner=bindparam("claimant", type_=claims.c.owner.type),
                host=bindparam("claimant_host", type_=claims.c.host.type),
                pid=bindparam("claimant_pid", type_=claims.c.pid.type),
                expires_at=bindparam("until", type_=claims.c.expires_at.type),
            ),
        )

    def _lookup(self, table: type[Base]) -> Prepared:
        columns = table.__table__
        return self._prepared(("lookup", columns.name), lambda: select(columns).where(columns.c.fingerprint == bindparam("fingerprint")), columns)

    def _insert(self, table: Any) -> Prepared:
        return self._prepared(("insert", table.name), lambda: _insert_once(self.dialect, table))

    def _prepared(self, key: Any, statement: Callable[[], Any], table: Any = None) -> Prepared:
        """A hot statement, compiled for the driver the first time it is needed."""
        prepared = self._statements.get(key)
        if prepared is None:
            prepared = self._statements[key] = self._driver.prepare(statement(), table)
        return prepared

    def replace(self, row: Base) -> None:
        """Store a row in place of any with the same key (a failure being retried, an image fetched again): one
        atomic upsert, so two workers doing it at once cannot collide."""
        table = row.__table__
        values = {c.key: getattr(row, c.key) for c in table.columns if getattr(row, c.key) is not None}
        keys = [c.name for c in table.primary_key.columns]
        if self.dialect in ON_CONFLICT_DIALECTS:
            statement = _upsert(self.dialect, table, values, keys)
            with self.engine.begin() as connection:
                connection.execute(statement)
            return
        with self.session() as session, session.begin():
            session.merge(row)

    @contextmanager
    def recorded_run(self, command: str, settings: dict[str, Any]) -> Iterator[RunRecord]:
        """Record a command as a run: ``running`` while the block runs, then ``finished`` with the counts the block set,
        or ``aborted`` if it raised (an error, a Ctrl+C)."""
        run = RunRecord(self.start_run(command, settings))
        status = "aborted"
        try:
            yield run
            status = "finished"
        finally:
            self.finish_run(run.run_id, status, run.counts if status == "finished" else {})

    def start_run(self, command: str, settings: dict[str, Any]) -> str:
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        with self.session() as session, session.begin():
            session.add(RunRow(run_id=run_id, command=command, settings=settings, counts={}))
        return run_id

    def finish_run(self, run_id: str, status: str, counts: dict[str, Any]) -> None:
        with self.session() as session, session.begin():
            run = session.get(RunRow, run_id)
            if run is not None:
                run.status, run.counts, run.finished_at = status, counts, datetime.now(UTC)

    def runs(self, command: str | None = None) -> list[RunRow]:
        with self.session() as session:
            query = select(RunRow).order_by(RunRow.started_at.desc())
            if command:
                query = query.where(RunRow.command == command)
            return list(session.scalars(query))


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {url!r} (e.g. sqlite:///.rae/rae.db or postgresql+psycopg://host/db)") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=16, max_overflow=64)
    if not parsed.database or parsed.database == ":memory:":
        raise StoreError("an in-memory SQLite store is a new empty database on every connection: give it a file, e.g. sqlite:///.rae/rae.db")
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=16, max_overflow=64)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_schema(engine: Engine) -> None:
    """Create the tables and columns this rae needs, if they are missing.

    Two rae commands started together on a new database both find the tables missing and both create them; the
    slower one fails on "already exists" (or, on PostgreSQL, a unique violation in its catalog). That failure means
    the other one won, so it is retried, and the retry finds the schema in place.
    """
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            Base.metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            if attempt == SCHEMA_ATTEMPTS - 1 or not _lost_schema_race(exc):
                raise
            time.sleep(0.2 * (attempt + 1))


def _lost_schema_race(exc: DBAPIError) -> bool:
    """The other process won (the table or column exists now), or, on SQLite, still holds the file while it creates
    them: switching a new file to WAL takes it whole, and a connection waiting on that can be refused at once."""
    message = str(exc.orig).lower()
    return isinstance(exc, IntegrityError) or any(words in message for words in ("already exists", "duplicate column", "database is locked"))


def _add_missing_columns(engine: Engine) -> None:
    """Bring a store made by an older rae up to date: columns added since then are added, with their defaults.

    Only additions: rae never drops or changes a column, so a store stays readable by the version that wrote it.
    """
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            default = column.default.arg if column.default is not None and not callable(column.default.arg) else None
            clause = f" DEFAULT '{default}'" if isinstance(default, str) else f" DEFAULT {default}" if default is not None else ""
            with engine.begin() as connection:
                connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}'))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")  # first, so that the switch to WAL waits for a lock as well
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _upsert(dialect: str, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    statement = dialect_insert(table).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_={k: statement.excluded[k] for k in values if k not in keys})


def _insertable(row: LMCall) -> dict[str, Any]:
    """The row's values for an insert, every column present (one statement shape). A column left unset on a new row
    (None) that has a default gets the default, instead of a NULL that the column may refuse."""
    values = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if value is None and column.default is not None:
            value = column.default.arg(None) if column.default.is_callable else column.default.arg
        values[column.key] = value
    return values


def _insert_once(dialect: str, table: Any) -> Any:
    """An insert that skips a row whose fingerprint is already stored (ON CONFLICT DO NOTHING where there is one)."""
    if dialect not in ON_CONFLICT_DIALECTS:
        return insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing(index_elements=["fingerprint"])


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable url>"

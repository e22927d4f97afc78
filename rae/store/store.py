"""The cache database: SQLite by default (a file under ``.rae/``, WAL), any SQLAlchemy URL (PostgreSQL) with the same code.

Each answer is committed as soon as it exists, so a run killed midway loses at most the calls in flight. A row is
inserted once: if another process stored the same fingerprint first, the insert is skipped, never duplicated.

Claims say who is paying for a key right now. A claim belongs to one claimant (an ``annotate.executor`` of some
process), never to a whole process: two claimants in one process wait for each other as two processes do. The
protocol that uses claims lives in ``rae.annotate.executor``; this module keeps them, many keys to a transaction
(``read_or_claim``, ``put_answers``), so a run with many calls in flight pays a transaction for a group of them.
Connections come from SQLAlchemy's pool.
"""

import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, delete, event, insert, inspect, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from rae.errors import RaeError
from rae.store.schema import LEGACY_TABLES, Base, ClaimRow, LMCallRow, MetaRow, RunRow

Row = TypeVar("Row")
LOOKUP_CHUNK = 500
SCHEMA_ATTEMPTS = 5
ON_CONFLICT_DIALECTS = ("sqlite", "postgresql")  # an insert that skips a stored key, without an error
HOST = socket.gethostname()
SCHEMA_VERSION = "2"  # answers keyed on their requests (lm_calls)
CONNECTIONS = 16  # the pool's size: PostgreSQL's default of 100 clients is shared by every process and node on a store


class StoreError(RaeError, RuntimeError):
    pass


@dataclass(frozen=True)
class Claim:
    """The answer to a claim on a key: whether the claimant now holds it, and the key's stored answer as of then (a
    stored answer is returned unclaimed)."""

    held: bool
    row: Any = None


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
        try:
            _create_schema(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {_safe(url)}: {exc.orig}") from None
        self._mark_schema()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """An ORM session: for the store's own rooms (rae/store/*), never opened elsewhere."""
        return self._sessions()

    def get(self, table: type[Base], fingerprint: str) -> Any:
        """The stored row of a key, read-only (its columns as attributes), or None."""
        columns = table.__table__
        with self.engine.connect() as connection:
            return connection.execute(select(columns).where(columns.c.fingerprint == fingerprint)).first()

    def get_many(self, table: type[Base], fingerprints: Iterable[str]) -> dict[str, Any]:
        wanted = list(dict.fromkeys(fingerprints))
        with self.engine.connect() as connection:
            return _rows_of(connection, table, wanted)

    def read_or_claim(self, fingerprints: list[str], owner: str, lease_s: float) -> dict[str, Claim]:
        """For each key: its stored answer (unclaimed), or a claim for ``owner`` before paying for it, in one
        transaction. Held if ``owner`` now holds it: nobody held it, or the holder's lease ran out, or the holder is a
        process on this host that no longer exists (a killed run). A claim held by another owner, in this process or
        another, is respected until then. Each key claimed is read again after the claim: an answer the previous holder
        stored just before it let go is served, and the new claim let go."""
        with self.engine.begin() as connection:
            stored = _rows_of(connection, LMCallRow, fingerprints)
            claims = {key: Claim(False, row) for key, row in stored.items()}
            now = datetime.now(UTC)
            until = now + timedelta(seconds=lease_s)
            for key in (k for k in fingerprints if k not in stored):
                claims[key] = Claim(self._take_claim(connection, key, owner, now, until))
            held = [key for key, claim in claims.items() if claim.held]
            late = _rows_of(connection, LMCallRow, held) if held else {}
            if late:
                connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(list(late)), ClaimRow.owner == owner))
                claims.update({key: Claim(False, row) for key, row in late.items()})
        return claims

    def put_answers(self, rows: list[dict[str, Any]], owner: str | None = None) -> None:
        """Store answers (``lm_calls`` rows as dicts) unless their keys are stored already, and let go of ``owner``'s
        claims on them, in one transaction."""
        if not rows:
            return
        with self.engine.begin() as connection:
            _insert_skipping_stored(connection, self.dialect, LMCallRow.__table__, rows)
            if owner is not None:
                keys = [row["fingerprint"] for row in rows]
                connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(keys), ClaimRow.owner == owner))

    def release(self, fingerprints: list[str], owner: str) -> None:
        if fingerprints:
            with self.engine.begin() as connection:
                connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(fingerprints), ClaimRow.owner == owner))

    def forget_answers(self, fingerprints: list[str]) -> int:
        """Delete stored answers (``--retry-failed``: answers that gave a failure, to be asked again). How many went."""
        if not fingerprints:
            return 0
        with self.engine.begin() as connection:
            return connection.execute(delete(LMCallRow).where(LMCallRow.fingerprint.in_(fingerprints))).rowcount

    def put(self, row: Base) -> bool:
        """Insert a row unless its key is stored already. True if this call inserted it."""
        table = row.__table__
        values = _values(row)
        with self.engine.begin() as connection:
            return _insert_skipping_stored(connection, self.dialect, table, [values]) == 1

    def put_many(self, rows: list[Base], replacing: bool = False) -> None:
        """Insert rows of one table in one transaction: each unless its key is stored already, or, ``replacing``, in
        place of the row stored under its key (a record of what a step came to: the latest run's stands)."""
        if not rows:
            return
        table = rows[0].__table__
        values = [_values(row) for row in rows]
        with self.engine.begin() as connection:
            if not replacing:
                _insert_skipping_stored(connection, self.dialect, table, values)
                return
            keys = [c.name for c in table.primary_key.columns]
            for value in values:
                connection.execute(_upsert(self.dialect, table, value, keys))

    def replace(self, row: Base) -> None:
        """Store a row in place of any with the same key (an image fetched again, a batch's new status): one atomic
        upsert, so two workers doing it at once cannot collide."""
        table = row.__table__
        values = {c.key: getattr(row, c.key) for c in table.columns if getattr(row, c.key) is not None}
        keys = [c.name for c in table.primary_key.columns]
        with self.engine.begin() as connection:
            connection.execute(_upsert(self.dialect, table, values, keys))

    @property
    def migrated(self) -> bool:
        """Whether the answers an older rae stored are keyed on their requests (``rae store migrate`` has run), or there
        were none."""
        return self.meta("schema_version") == SCHEMA_VERSION

    def _mark_schema(self) -> None:
        """A new store is schema 2 at once; a store an older rae wrote is marked with when its old rows end (rows made
        after are this rae's records), until ``rae store migrate`` carries them over."""
        if self.meta("schema_version") is not None or self.meta("legacy_until") is not None:
            return
        with self.engine.connect() as connection:
            legacy = any(connection.execute(select(table.fingerprint).limit(1)).first() for table in LEGACY_TABLES)
        if legacy:
            self.set_meta("legacy_until", datetime.now(UTC).isoformat())
        else:
            self.set_meta("schema_version", SCHEMA_VERSION)

    def meta(self, name: str) -> str | None:
        with self.session() as session:
            row = session.get(MetaRow, name)
            return row.value if row is not None else None

    def set_meta(self, name: str, value: str) -> None:
        self.replace(MetaRow(name=name, value=value))

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

    def run(self, run_id: str) -> RunRow | None:
        with self.session() as session:
            return session.get(RunRow, run_id)

    def _take_claim(self, connection: Connection, key: str, owner: str, now: datetime, until: datetime) -> bool:
        values = {"fingerprint": key, "owner": owner, "host": HOST, "pid": os.getpid(), "expires_at": until}
        if _insert_skipping_stored(connection, self.dialect, ClaimRow.__table__, [values]) == 1:
            return True
        holder = connection.execute(select(ClaimRow.__table__).where(ClaimRow.fingerprint == key)).first()
        if holder is None or holder.owner == owner:
            return holder is not None
        expires = holder.expires_at if holder.expires_at.tzinfo else holder.expires_at.replace(tzinfo=UTC)
        if expires > now and not (holder.host == HOST and not _alive(holder.pid)):
            return False
        taken = connection.execute(
            update(ClaimRow)
            .where(ClaimRow.fingerprint == key, ClaimRow.owner == holder.owner)
            .values(owner=owner, host=HOST, pid=os.getpid(), expires_at=until)
        )
        return taken.rowcount == 1


def _rows_of(connection: Connection, table: type[Base], fingerprints: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    columns = table.__table__
    for start in range(0, len(fingerprints), LOOKUP_CHUNK):
        chunk = fingerprints[start : start + LOOKUP_CHUNK]
        for row in connection.execute(select(columns).where(columns.c.fingerprint.in_(chunk))):
            found[row.fingerprint] = row
    return found


def _insert_skipping_stored(connection: Connection, dialect: str, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose keys are not stored yet (ON CONFLICT DO NOTHING); how many went in."""
    if dialect in ON_CONFLICT_DIALECTS:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        statement = dialect_insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
        return len(connection.execute(statement, rows).all())  # the rows that went in (a row count is not exact on every driver)
    inserted = 0
    for row in rows:  # a dialect without ON CONFLICT: another process may have stored a key first
        try:
            with connection.begin_nested():
                inserted += connection.execute(insert(table), row).rowcount
        except IntegrityError:
            continue
    return inserted


def _values(row: Base) -> dict[str, Any]:
    """The row's values for an insert, every column present (one statement shape). A column left unset on a new row
    (None) that has a default gets the default, instead of a NULL that the column may refuse."""
    values = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if value is None and column.default is not None:
            value = column.default.arg(None) if column.default.is_callable else column.default.arg
        values[column.key] = value
    return values


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {url!r} (e.g. sqlite:///.rae/rae.db or postgresql+psycopg://host/db)") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=CONNECTIONS, max_overflow=0, pool_timeout=600)
    if not parsed.database or parsed.database == ":memory:":
        raise StoreError("an in-memory SQLite store is a new empty database on every connection: give it a file, e.g. sqlite:///.rae/rae.db")
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=CONNECTIONS, max_overflow=0, pool_timeout=600)
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


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable url>"

"""The database under the store: an engine with a pool of connections, its schema created or brought up to date.

SQLite is a file under ``.rae/`` in WAL mode (a busy timeout, so that processes sharing it wait rather than fail);
any other SQLAlchemy URL (PostgreSQL) gets a pool sized so that every process and node on one server fits in its
connection limit. Schema changes are additions only, so a store stays readable by the rae that wrote it.
"""

import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, ProgrammingError

from rae.errors import RaeError
from rae.store.schema import Base

SCHEMA_ATTEMPTS = 5
CONNECTIONS = 16  # the pool's size: PostgreSQL's default of 100 clients is shared by every process and node on a store


class StoreError(RaeError, RuntimeError):
    pass


def open_engine(url: str) -> Engine:
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


def create_schema(engine: Engine) -> None:
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


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable url>"

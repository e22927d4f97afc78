"""The store's hot statements, run on the database driver's own connections.

Every judgment costs a read of its key (in the claim's transaction, ``rae.annotate.executor``), and every paid one a
claim (with a read after it) and an insert (with the claim's release).
Through SQLAlchemy's ``Connection.execute`` each of those statements costs about 0.2 ms of CPU (a connection checkout,
an execution context, a result object); at 64 workers that was a third of rae's own CPU per pair. Here the same
statements are compiled once by SQLAlchemy for the store's dialect (so the SQL, its parameter style, its casts and
its ``ON CONFLICT`` are SQLAlchemy's), their parameters and results converted by the column types' own processors, and
run on plain DBAPI connections that this class keeps (16 on PostgreSQL, one on SQLite), each used by one worker at a
time. Everything else in the store (the
schema, runs, reviews, exports) goes through SQLAlchemy as before.

A driver error is raised as the SQLAlchemy exception it would have been (``IntegrityError``, ``OperationalError``), so
callers handle one family. A connection the database dropped (a PostgreSQL restart) is discarded, and the
transaction tried once more on a new one, as the engine's pre-ping would have done.
"""

import contextlib
import os
import queue
import weakref
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import TypeEngine

Processor = Callable[[Any], Any] | None
# Connections a store keeps, like the engine's pool: a transaction here is short, 64 workers rarely need more, and
# PostgreSQL's default of 100 clients is shared by every process and node writing to one store.
MAX_CONNECTIONS = 16
# SQLite lets one writer in at a time: with more connections, 64 workers' transactions wait for each other in SQLite's
# busy handler, which sleeps and polls the file lock (strace, 1,600 pairs at 64 workers: 12,218 sleeps, 152,692 futex
# calls). One connection makes them wait in this pool's queue instead (3 sleeps, 79,840 futex calls); rae's CPU a
# pair, alternating runs: 1.69-1.91 ms with one, 1.96-2.12 ms with 16.
# Other processes on the same file still meet in SQLite's lock, as before.
SQLITE_CONNECTIONS = 1


_pid = os.getpid()


def process_id() -> int:
    """This process's id. ``os.getpid`` is a system call, and every transaction asks (to see that it runs in a forked
    child); so the id is kept here, set again in the child by a fork hook."""
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


@dataclass
class Prepared:
    """A statement compiled for the driver: its SQL, its parameters in the driver's order, and how to convert values."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    binds: tuple[Processor, ...]
    row: type | None = None  # a select's row type (a named tuple of the table's columns)
    types: tuple[TypeEngine, ...] = ()  # a select's column types, whose result processors convert what the driver read
    results: tuple[Processor, ...] | None = None  # made from the driver's own column types, at the first row read

    def parameters(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted = [value if bind is None else bind(value) for bind, value in zip(self.binds, (values[n] for n in self.names), strict=True)]
        return tuple(converted) if self.positional else dict(zip(self.names, converted, strict=True))

    def as_row(self, raw: tuple[Any, ...] | None, dialect: Dialect, description: Any) -> Any:
        if raw is None or self.row is None:
            return None
        if self.results is None:
            self.results = tuple(t.result_processor(dialect, column[1]) for t, column in zip(self.types, description, strict=True))
        return self.row(*(value if result is None else result(value) for result, value in zip(self.results, raw, strict=True)))


class Transaction:
    """One transaction on a driver connection: execute prepared statements, read their first row or row count."""

    def __init__(self, cursor: Any, dialect: Dialect):
        self.cursor, self.dialect = cursor, dialect

    def rowcount(self, statement: Prepared, values: dict[str, Any]) -> int:
        self.cursor.execute(statement.sql, statement.parameters(values))
        return self.cursor.rowcount

    def first(self, statement: Prepared, values: dict[str, Any]) -> Any:
        self.cursor.execute(statement.sql, statement.parameters(values))
        return statement.as_row(self.cursor.fetchone(), self.dialect, self.cursor.description)


class DriverStatements:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect
        # The pool: a place per connection, each an idle connection or None (a connection not opened yet). A transaction
        # takes a place and gives it back; with every place taken, the next one waits. A C queue, because a semaphore
        # and a lock in Python cost a twentieth of rae's CPU a pair at 64 workers.
        self.max_connections = SQLITE_CONNECTIONS if engine.dialect.name == "sqlite" else MAX_CONNECTIONS
        self._places: queue.SimpleQueue[Any] = _places(self.max_connections)
        self._pid = _pid
        self._opened: list[Any] = []  # every connection opened, for closing them when the store goes
        weakref.finalize(self, _close_all, self._opened)

    def prepare(self, statement: ClauseElement, table: Table | None = None) -> Prepared:
        """``statement`` compiled for this dialect; with ``table``, a select of all its columns, read as named tuples."""
        compiled = statement.compile(dialect=self.dialect)
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup) if positional else tuple(compiled.binds)
        binds = tuple(compiled.binds[name].type.dialect_impl(self.dialect).bind_processor(self.dialect) for name in names)
        if table is None:
            return Prepared(compiled.string, names, positional, binds)
        columns = list(table.columns)
        types = tuple(c.type.dialect_impl(self.dialect) for c in columns)
        return Prepared(compiled.string, names, positional, binds, namedtuple(f"{table.name}_row", [c.key for c in columns]), types)

    def run(self, work: Callable[[Transaction], Any]) -> Any:
        """``work`` in one transaction; once more on a new connection if the database had dropped the first."""
        try:
            return self.transaction(work)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return self.transaction(work)

    def transaction(self, work: Callable[[Transaction], Any]) -> Any:
        """``work`` in a transaction, committed when it returns, rolled back if it raises. A dropped connection is not
        reused. At most ``self.max_connections`` at once: a worker beyond them waits for a connection to come back.
        (A function, not a context manager: it runs for every statement of every judgment.)"""
        connection = self._take()
        try:
            cursor = connection.cursor()
            try:
                result = work(Transaction(cursor, self.dialect))
            finally:
                cursor.close()
            connection.commit()
        except self.dialect.loaded_dbapi.Error as exc:
            dropped = self._dropped(exc, connection)
            self._discard_or_return(connection, dropped)
            raise DBAPIError.instance(None, None, exc, self.dialect.loaded_dbapi.Error, connection_invalidated=dropped, dialect=self.dialect) from exc
        except BaseException:
            self._discard_or_return(connection, dropped=False)
            raise
        self._places.put(connection)
        return result

    def _take(self) -> Any:
        if self._pid != _pid:  # a forked child: its parent's connections are not its own to use
            self._opened.clear()  # forgotten, not closed: closing would end the parent's sessions too
            self._places, self._pid = _places(self.max_connections), _pid
        connection = self._places.get()
        if connection is not None:
            return connection
        try:
            fairy = self.engine.raw_connection()  # made by the engine, so its connect hooks (SQLite's pragmas) have run
        except BaseException:
            self._places.put(None)
            raise
        connection = fairy.dbapi_connection
        fairy.detach()  # ours from now on: it does not hold one of the engine's pooled connections
        self._opened.append(connection)
        return connection

    def _discard_or_return(self, connection: Any, dropped: bool) -> None:
        """After a failed transaction: a connection the database dropped is closed; any other is rolled back and reused."""
        if not dropped:
            try:
                connection.rollback()
                self._places.put(connection)
                return
            except self.dialect.loaded_dbapi.Error:
                pass
        with contextlib.suppress(ValueError):
            self._opened.remove(connection)
        _close_all([connection])
        self._places.put(None)  # its place is free: the next transaction there opens a new connection

    def _dropped(self, exc: BaseException, connection: Any) -> bool:
        return bool(self.dialect.is_disconnect(exc, connection, None))


def _places(count: int) -> "queue.SimpleQueue[Any]":
    places: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for _ in range(count):
        places.put(None)
    return places


def _close_all(connections: list[Any]) -> None:
    for connection in connections:
        with contextlib.suppress(Exception):  # already gone with its database: nothing to release
            connection.close()
    connections.clear()

"""The cache database: SQLite by default (a file under ``.rae/``, WAL), any SQLAlchemy URL (PostgreSQL) with the same code.

Each answer is committed as soon as it exists, so a run killed midway loses at most the calls in flight. A row is
inserted once: if another process stored the same fingerprint first, the insert is skipped, never duplicated.

Claims say who is paying for a key right now. A claim belongs to one claimant (an ``annotate.executor`` of some
process), never to a whole process: two claimants in one process wait for each other as two processes do. The
protocol that uses claims lives in ``rae.annotate.executor``; this module keeps them, many keys to a transaction
(``read_or_claim``, ``put_answers``), so a run with many calls in flight pays a transaction for a group of them.
Connections come from SQLAlchemy's pool.
"""

import functools
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from rae.store.database import StoreError, create_schema, open_engine, safe_url
from rae.store.ledger import Hold, Reservation, Settlement, reserve_in_turn, settle
from rae.store.schema import LEGACY_TABLES, Base, ClaimRow, LMCallRow, MetaRow, RunRow

Row = TypeVar("Row")
LOOKUP_CHUNK = 500
ON_CONFLICT_DIALECTS = ("sqlite", "postgresql")  # an insert that skips a stored key, without an error
HOST = socket.gethostname()
SCHEMA_VERSION = "3"  # answers keyed on what their sender sends (lm_calls); 2: on the model's identity and DSPy's request


@dataclass(frozen=True)
class Claim:
    """The answer to a claim on a key: whether the claimant now holds it, and the key's stored answer as of then (a
    stored answer is returned unclaimed); ``refused``: the key was free, but its call's reservation did not fit the
    budget, never to be paid. Not held, not refused and no row: ask again later (someone else holds the key, or the
    reservation fits once the claimant's own calls in flight settle: ``ledger.Hold.WAIT``)."""

    held: bool
    row: Any = None
    refused: bool = False


@dataclass
class Exchange:
    """What a group of calls in flight asks of the store (``Store.exchange``): answers with the owner of their claims
    and the settlement of their reservations, claims to let go (owner, key, settlement), records to replace, keys to
    claim (owner, key, lease, the reservation its call needs) and keys only to read."""

    answers: list[tuple[str | None, dict[str, Any], Settlement | None]] = field(default_factory=list)
    releases: list[tuple[str, str, Settlement | None]] = field(default_factory=list)
    records: list[Base] = field(default_factory=list)
    claims: list[tuple[str, str, float, Reservation | None]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Exchanged:
    """The store's answers to an ``Exchange``: each claim by (owner, key), and each key read (absent if not stored)."""

    claims: dict[tuple[str, str], Claim]
    read: dict[str, Any]


@dataclass
class RunRecord:
    """The run a command is recording: its id, and the counts it will be stored with when it finishes."""

    run_id: str
    counts: dict[str, Any] = field(default_factory=dict)


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = open_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            create_schema(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the store at {safe_url(url)}: {exc.orig}") from None
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

    def read_or_claim(self, fingerprints: list[str], owner: str, lease_s: float, reservations: dict[str, Reservation] | None = None) -> dict[str, Claim]:
        """For each key: its stored answer (unclaimed), or a claim for ``owner`` before paying for it, in one
        transaction. Held if ``owner`` now holds it: nobody held it, or the holder's lease ran out, or the holder is a
        process on this host that no longer exists (a killed run). A claim held by another owner, in this process or
        another, is respected until then. Each key claimed is read again after the claim: an answer the previous holder
        stored just before it let go is served, and the new claim let go. A key held with a reservation (its call's
        most possible cost) keeps its claim only if the budget takes the reservation; else it is let go, refused."""
        with self.engine.begin() as connection:
            return self._read_or_claim(connection, fingerprints, owner, lease_s, reservations or {})

    def put_answers(self, rows: list[dict[str, Any]], owner: str | None = None, settlements: list[Settlement] | None = None) -> None:
        """Store answers (``lm_calls`` rows as dicts) unless their keys are stored already, let go of ``owner``'s
        claims on them and settle their reservations, in one transaction."""
        if not rows and not settlements:
            return
        with self.engine.begin() as connection:
            self._put_answers(connection, rows, owner)
            for settlement in settlements or []:
                settle(connection, settlement)

    def exchange(self, exchange: "Exchange") -> "Exchanged":
        """Everything a group of calls in flight asks of the store at once, in one transaction: their answers stored
        (each owner's claims let go, their reservations settled), claims let go, records replaced, keys claimed (with
        their reservations) and keys read, in that order (a claim then finds an answer stored in the same group). One
        transaction, not one per kind: on SQLite each commit is a write of the log, and a thread that runs them gives up
        the interpreter lock around each statement."""
        claims: dict[tuple[str, str], Claim] = {}
        with self.engine.begin() as connection:
            for owner, rows in _grouped((owner, row) for owner, row, _ in exchange.answers).items():
                self._put_answers(connection, rows, owner)
            for owner, keys in _grouped((owner, key) for owner, key, _ in exchange.releases).items():
                connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(keys), ClaimRow.owner == owner))
            for settlement in [s for *_, s in exchange.answers + exchange.releases if s is not None]:
                settle(connection, settlement)
            for table, rows in _grouped((row.__table__, _values(row)) for row in exchange.records).items():
                connection.execute(_replacing(self.dialect, table), rows)
            for (owner, lease_s), wanted in _grouped(((o, lease), (k, r)) for o, k, lease, r in exchange.claims).items():
                reservations = {key: r for key, r in wanted if r is not None}
                keys = list(dict.fromkeys(key for key, _ in wanted))
                for key, claim in self._read_or_claim(connection, keys, owner, lease_s, reservations).items():
                    claims[(owner, key)] = claim
            read = _rows_of(connection, LMCallRow, list(dict.fromkeys(exchange.reads))) if exchange.reads else {}
        return Exchanged(claims, read)

    def release(self, fingerprints: list[str], owner: str, settlements: list[Settlement] | None = None) -> None:
        """Let go of ``owner``'s claims (a call that failed), settling their reservations, in one transaction."""
        if fingerprints or settlements:
            with self.engine.begin() as connection:
                connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(fingerprints), ClaimRow.owner == owner))
                for settlement in settlements or []:
                    settle(connection, settlement)

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
            connection.execute(_replacing(self.dialect, table), values)

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
        """A new store is this schema at once; a store of schema 2 stays marked so until ``rae store migrate`` keys its
        answers again; a store an older rae wrote is marked with when its old rows end (rows made after are this rae's
        records), until ``rae store migrate`` carries them over."""
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

    def _read_or_claim(self, connection: Connection, fingerprints: list[str], owner: str, lease_s: float,
                       reservations: dict[str, Reservation]) -> dict[str, Claim]:
        stored = _rows_of(connection, LMCallRow, fingerprints)
        claims = {key: Claim(False, row) for key, row in stored.items()}
        now = datetime.now(UTC)
        until = now + timedelta(seconds=lease_s)
        missing = [k for k in fingerprints if k not in stored]
        if missing:
            claims.update({key: Claim(held) for key, held in self._take_claims(connection, missing, owner, now, until).items()})
        held = [key for key, claim in claims.items() if claim.held]
        late = _rows_of(connection, LMCallRow, held) if held else {}
        to_reserve = {key: reservations[key] for key in held if key not in late and key in reservations}
        holds = reserve_in_turn(connection, to_reserve, in_flight=bool(to_reserve) and _holds_others(connection, owner, fingerprints))
        not_held = [key for key, hold in holds.items() if hold is not Hold.HELD]
        let_go = list(late) + not_held
        if let_go:
            connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(let_go), ClaimRow.owner == owner))
            claims.update({key: Claim(False, row) for key, row in late.items()})
            claims.update({key: Claim(False, refused=holds[key] is Hold.REFUSED) for key in not_held})
        return claims

    def _put_answers(self, connection: Connection, rows: list[dict[str, Any]], owner: str | None) -> None:
        _insert_skipping_stored(connection, self.dialect, LMCallRow.__table__, rows)
        if owner is not None:
            keys = [row["fingerprint"] for row in rows]
            connection.execute(delete(ClaimRow).where(ClaimRow.fingerprint.in_(keys), ClaimRow.owner == owner))

    def _take_claims(self, connection: Connection, keys: list[str], owner: str, now: datetime, until: datetime) -> dict[str, bool]:
        """Claim each key for ``owner``: a key nobody holds at once (one insert for them all), a key whose holder's lease
        ran out or whose holder died on this host by taking it over; a key held by anyone else is not taken."""
        mine = {"owner": owner, "host": HOST, "pid": os.getpid(), "expires_at": until}
        inserted = set(_inserted_keys(connection, self.dialect, ClaimRow.__table__, [{"fingerprint": key, **mine} for key in keys]))
        taken = {key: key in inserted for key in keys}
        others = [key for key in keys if key not in inserted]
        if not others:
            return taken
        for holder in connection.execute(select(ClaimRow.__table__).where(ClaimRow.fingerprint.in_(others))):
            if holder.owner == owner:
                taken[holder.fingerprint] = True
                continue
            expires = holder.expires_at if holder.expires_at.tzinfo else holder.expires_at.replace(tzinfo=UTC)
            if expires > now and not (holder.host == HOST and not _alive(holder.pid)):
                continue
            took = connection.execute(
                update(ClaimRow).where(ClaimRow.fingerprint == holder.fingerprint, ClaimRow.owner == holder.owner).values(**mine)
            )
            taken[holder.fingerprint] = took.rowcount == 1
        return taken


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
    return len(_inserted_keys(connection, dialect, table, rows))


def _inserted_keys(connection: Connection, dialect: str, table: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """Insert the rows whose keys are not stored yet; the keys (first key column) of the rows that went in."""
    key = table.primary_key.columns[0]
    if dialect in ON_CONFLICT_DIALECTS:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        statement = dialect_insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
        return [row[0] for row in connection.execute(statement, rows)]  # the rows that went in (a row count is not exact on every driver)
    inserted = []
    for row in rows:  # a dialect without ON CONFLICT: another process may have stored a key first
        try:
            with connection.begin_nested():
                if connection.execute(insert(table), row).rowcount:
                    inserted.append(row[key.name])
        except IntegrityError:
            continue
    return inserted


def _grouped(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    """The second of each pair, listed under the first, in order."""
    groups: dict[Any, list[Any]] = {}
    for head, item in pairs:
        groups.setdefault(head, []).append(item)
    return groups


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _upsert(dialect: str, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    statement = dialect_insert(table).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_={k: statement.excluded[k] for k in values if k not in keys})


@functools.cache
def _replacing(dialect: str, table: Any) -> Any:
    """An upsert of whole rows of ``table``, every column but the key replaced: built once, run with many rows."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    statement = dialect_insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return statement.on_conflict_do_update(index_elements=keys, set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys})


def _holds_others(connection: Connection, owner: str, keys: list[str]) -> bool:
    """Whether the claimant holds claims beyond these keys: calls in flight, each with its reservation until it settles."""
    others = select(ClaimRow.fingerprint).where(ClaimRow.owner == owner, ClaimRow.fingerprint.not_in(keys)).limit(1)
    return connection.execute(others).first() is not None


"""What runs recorded of their steps: each judgment of a pair and each query's requirements and guidelines, with
the program, model and run that made them (``rae.annotate.outcome``). Listings read these; a judgment's label is read
by replaying the program over the stored answers, never from here."""

from datetime import datetime

from sqlalchemy import func, select

from rae.store.schema import GuidelinesRow, JudgmentRow, LMCallRow, RequirementsRow
from rae.store.store import Store


def judged_pairs_of_queries(store: Store, query_texts: list[str]) -> set[tuple[str, str, str]]:
    """(query id, query, product id) of every pair some run judged, for these query texts."""
    with store.session() as session:
        rows = session.execute(select(JudgmentRow.query_id, JudgmentRow.query, JudgmentRow.product_id).where(JudgmentRow.query.in_(query_texts)))
        return {tuple(row) for row in rows}


def judgment_records(store: Store, model_id: str | None = None, program: str | None = None) -> list[JudgmentRow]:
    """The recorded judgments (of one model and program, or of all), oldest first."""
    query = select(JudgmentRow).order_by(JudgmentRow.created_at)
    if model_id is not None:
        query = query.where(JudgmentRow.model_id == model_id)
    if program is not None:
        query = query.where(JudgmentRow.program_hash == program)
    with store.session() as session:
        return list(session.scalars(query))


def step_records(store: Store, table: type[RequirementsRow] | type[GuidelinesRow] | type[JudgmentRow], model_id: str | None = None) -> list:
    """Every record of one step that did not fail to parse (of one model, or of all)."""
    query = select(table).where(table.status != "failed")
    if model_id is not None:
        query = query.where(table.model_id == model_id)
    with store.session() as session:
        return list(session.scalars(query))


def answer_tokens(store: Store, model_id: str, stage: str) -> tuple[int, float | None, float | None]:
    """How many answers of one stage this model gave, and their mean input and output tokens."""
    with store.session() as session:
        return tuple(session.execute(
            select(func.count(), func.avg(LMCallRow.input_tokens), func.avg(LMCallRow.output_tokens)).where(
                LMCallRow.model_id == model_id, LMCallRow.stage == stage
            )
        ).one())


def legacy_rows(store: Store, table: type[RequirementsRow] | type[GuidelinesRow] | type[JudgmentRow]) -> list:
    """The rows an older rae stored in a table (before this rae first opened the store), oldest first."""
    until = store.meta("legacy_until")
    if until is None:
        return []
    query = select(table).where(table.created_at <= datetime.fromisoformat(until)).order_by(table.created_at)
    with store.session() as session:
        return list(session.scalars(query))


def answers_of_schema_2(store: Store) -> list:
    """The answers store schema 2 keyed (on the model's identity, which then named no sender), while the store is
    still marked schema 2."""
    if store.meta("schema_version") != "2":
        return []
    table = LMCallRow.__table__
    with store.engine.connect() as connection:
        return [row for row in connection.execute(select(table)) if '"sender"' not in (row.model_id or "")]


def rekeyed(store: Store, moved: dict[str, dict]) -> None:
    """Store each answer again under its new key (and what was sent, and its model's identity now), dropping the old
    row, in one transaction; an answer already stored under the new key is kept."""
    if not moved:
        return
    table = LMCallRow.__table__
    with store.engine.begin() as connection:
        selected = connection.execute(select(table).where(table.c.fingerprint.in_(list(moved))))
        old = {row.fingerprint: {column.name: getattr(row, column.name) for column in table.columns} for row in selected}
        rows = [{**old[key], **new} for key, new in moved.items() if key in old]
        stored = {r[0] for r in connection.execute(select(table.c.fingerprint).where(table.c.fingerprint.in_([r["fingerprint"] for r in rows])))}
        fresh = [row for row in rows if row["fingerprint"] not in stored]
        if fresh:
            connection.execute(table.insert(), fresh)
        connection.execute(table.delete().where(table.c.fingerprint.in_(list(moved))))

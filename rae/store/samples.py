"""Queries drawn for human labelling from an evaluation's population, with the probabilities they were drawn with."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from rae.store.schema import EvaluationSampleRow
from rae.store.store import Store


def sample_of(store: Store, population: str) -> list[EvaluationSampleRow]:
    with store.session() as session:
        return list(session.scalars(select(EvaluationSampleRow).where(EvaluationSampleRow.population == population)))


def record_sample(store: Store, population: str, run_id: str, rows: list[dict[str, Any]]) -> None:
    """The draw for a population (one row a drawn query: query_id, design, stratum, inclusion_probability, draws,
    stratum_size, without_replacement), in place of any earlier one: the probabilities of two draws do not combine."""
    now = datetime.now(UTC)
    with store.session() as session, session.begin():
        session.execute(delete(EvaluationSampleRow).where(EvaluationSampleRow.population == population))
        session.add_all(EvaluationSampleRow(population=population, run_id=run_id, created_at=now, **row) for row in rows)

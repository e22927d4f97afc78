"""Queries drawn for human labelling from an evaluation's population, with their inclusion probabilities."""

from datetime import UTC, datetime

from sqlalchemy import delete, select

from rae.store.schema import EvaluationSampleRow
from rae.store.store import Store


def sample_of(store: Store, population: str) -> list[EvaluationSampleRow]:
    with store.session() as session:
        return list(session.scalars(select(EvaluationSampleRow).where(EvaluationSampleRow.population == population)))


def record_sample(store: Store, population: str, run_id: str, design: str, strata: dict[str, str], probabilities: dict[str, float]) -> None:
    """The draw for a population, in place of any earlier one."""
    now = datetime.now(UTC)
    with store.session() as session, session.begin():
        session.execute(delete(EvaluationSampleRow).where(EvaluationSampleRow.population == population))
        session.add_all(
            EvaluationSampleRow(population=population, query_id=q, run_id=run_id, design=design, stratum=strata[q], inclusion_probability=p,
                                created_at=now)
            for q, p in probabilities.items()
        )

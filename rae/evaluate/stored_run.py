"""An evaluation that already ran, read back from its report directory and the store, and scored again.

``rae report <run-id>``, ``rae plan`` and ``rae review queue --for-evaluation`` work on an evaluation after the fact:
its queries (``queries.json``), each engine's rankings (``runs/<engine>.trec``) and its settings (the run's row in the
store) are enough to recompute every metric from the stored judgments, with no LM call, and with whatever human labels
the store holds by now.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rae.annotate.summary import AnnotationSummary
from rae.config import ConfigError, Settings
from rae.datasets.records import Pair, Query
from rae.evaluate.designs import Draw
from rae.evaluate.evaluation import EngineRun, Evaluation, human_gains_for, scored
from rae.evaluate.metrics import Gains
from rae.retrieve.rankings import Rankings
from rae.retrieve.trec import TrecRunEngine
from rae.store.samples import sample_of
from rae.store.store import Store
from rae.workspace import Workspace


@dataclass
class StoredEvaluation:
    run_id: str
    directory: Path
    queries: list[Query]
    rankings: dict[str, Rankings]  # engine -> query id -> product ids, in the evaluation's engine order
    k: int
    settings: dict[str, Any]

    @property
    def population(self) -> str:
        """A fingerprint of the evaluated queries: the population a draw for human labelling is made from."""
        return population_of([q.query_id for q in self.queries])

    def pools(self) -> dict[str, set[str]]:
        """Each query's pool: every product any engine returned for it."""
        return {q.query_id: {p for ranking in self.rankings.values() for p in ranking.get(q.query_id, [])} for q in self.queries}

    def pool_pairs(self) -> list[Pair]:
        """Every pair of the pools, query by query, products in order."""
        texts = {q.query_id: q.text for q in self.queries}
        return [Pair(q, texts[q], p) for q, pool in self.pools().items() for p in sorted(pool)]


def population_of(query_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(query_ids)).encode()).hexdigest()[:16]


def evaluation_dir(store: Store, reports_dir: Path, run_id: str | None) -> Path | None:
    """The report directory of evaluation ``run_id`` (default: the latest finished one); None if there is none."""
    if run_id is None:
        finished = [r for r in store.runs("evaluate") if r.status == "finished"]
        if not finished:
            return None
        run_id = finished[0].run_id
    directory = reports_dir / run_id
    if not (directory / "metrics.json").exists():
        raise ConfigError(f"no report of evaluation {run_id} in {directory}")
    return directory


def load_evaluation(store: Store, reports_dir: Path, run_id: str | None) -> StoredEvaluation:
    directory = evaluation_dir(store, reports_dir, run_id)
    if directory is None:
        raise ConfigError("no evaluation has finished yet: run `rae evaluate` first")
    metrics = json.loads((directory / "metrics.json").read_text())
    if not (directory / "queries.json").exists():
        raise ConfigError(f"{directory} was written by an older rae (no queries.json): run the evaluation again")
    queries = [Query(**q) for q in json.loads((directory / "queries.json").read_text())]
    rankings = {}
    for engine in metrics["engines"]:  # a query the engine found nothing for has no line in its run file
        ranked = TrecRunEngine(directory / "runs" / f"{engine}.trec").rankings
        rankings[engine] = {q.query_id: ranked.get(q.query_id, []) for q in queries}
    run = store.run(directory.name)
    settings = run.settings if run is not None else {}
    return StoredEvaluation(directory.name, directory, queries, rankings, int(metrics["k"]), settings)


def drawn_for(store: Store, population: str) -> Draw | None:
    """The draw of queries for human labelling recorded for this population (None: none was made, and the judge is
    not corrected)."""
    return Draw.from_rows(sample_of(store, population))


def known_at_draw(workspace: Workspace, queries: list[Query], drawn: Draw | None) -> Gains | None:
    """The human labels of these queries given before the draw was made: fixed whatever it drew, so the prediction
    its queries correct may hold them (``rae.evaluate.corrected``)."""
    if drawn is None or drawn.made_at is None:
        return None
    return human_gains_for(queries, workspace.human_labels_before(drawn.made_at))


def workspace_of(stored: StoredEvaluation, base: Workspace) -> Workspace:
    """A workspace with the settings the evaluation ran with (its model, program, store), so its stored judgments are
    the ones read back."""
    if not stored.settings:
        return base
    # The run's record holds the settings beside the engines it compared (by name) and k.
    settings = {k: v for k, v in stored.settings.items() if k in Settings.model_fields and not (k == "engines" and isinstance(v, list))}
    return Workspace(Settings.model_validate({**settings, "store": base.settings.store}))


def rescored(workspace: Workspace, stored: StoredEvaluation) -> Evaluation:
    """Every metric of the evaluation again, from the stored judgments and today's human labels; no LM call."""
    judging = workspace.judging(allow_calls=False)
    runs = [EngineRun(name, ranking, 0.0, AnnotationSummary(pairs=sum(map(len, ranking.values())))) for name, ranking in stored.rankings.items()]
    human = human_gains_for(stored.queries, workspace.human_labels)
    drawn = drawn_for(workspace.store, stored.population)
    return scored(runs, stored.queries, judging, workspace.labelled.catalog, stored.k, human, drawn, known_at_draw(workspace, stored.queries, drawn))

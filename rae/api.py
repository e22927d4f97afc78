"""rae from Python: the same code the command line runs, for notebooks and ablations in pandas.

    import rae.api as rae
    workspace = rae.open_workspace()                       # ./rae.toml if there is one; keyword overrides on top
    rae.annotate(workspace, split="dev", queries=3, per_query=6)
    frame = rae.judgments_frame(workspace, split="dev", queries=3, per_query=6)   # judge and human side by side
    frame.to_parquet("judgments.parquet")

Every function takes a ``Workspace`` (settings, store, model, program) and returns plain records or pandas frames;
nothing here keeps state of its own.
"""

from pathlib import Path
from typing import Any

import dspy
import pandas as pd

from rae.annotate.run import AnnotationRun
from rae.annotate.summary import AnnotationSummary
from rae.config import load_settings
from rae.datasets.records import Pair
from rae.datasets.searchlog import query_id_for
from rae.evaluate.queries import evaluation_queries
from rae.evaluate.run import EvaluationRun, run_evaluation
from rae.evaluate.stored_run import load_evaluation, rescored, workspace_of
from rae.programs.annotator import Annotator
from rae.programs.artifacts import UNCOMPILED, load_artifact
from rae.retrieve.build import build_engines, default_engine_names
from rae.retrieve.rankings import retrieve_all
from rae.scaleout.runner import Placement, annotate_recorded
from rae.workspace import Workspace


def open_workspace(config: str | Path | None = None, **overrides: Any) -> Workspace:
    """The workspace of a config file (default ``./rae.toml`` if present), with settings overridden by keyword
    (``model_name=...``, ``store=...``, ``program="uncompiled"``, ...)."""
    return Workspace(load_settings(config).with_overrides(**overrides))


def annotate(
    workspace: Workspace, split: str = "dev", queries: int | None = None, per_query: int | None = None, pairs: list[Pair] | None = None,
    placement: Placement = Placement(), budget: float | None = None, retry_failed: bool = False,
) -> AnnotationSummary:
    """Judge a slice of the labelled set (or the given pairs) into the store, as ``rae annotate`` does: where the
    placement says (processes, a Ray cluster, batches), within the budget, recorded as a run. What is stored already
    costs nothing."""
    chosen = pairs if pairs is not None else workspace.labelled.pairs(split, queries, per_query)
    return annotate_recorded(workspace, chosen, placement, retry_failed, budget, progress=False)[1]


def evaluate(workspace: Workspace, engines: list[str] | None = None, queries: int = 20, split: str | None = None, k: int = 10) -> EvaluationRun:
    """Compare engines as ``rae evaluate`` does (writing the same report); ``.evaluation`` holds the metrics."""
    settings, catalog = workspace.settings, workspace.labelled.catalog
    chosen = evaluation_queries(workspace.labelled, settings.search_log, queries, split)
    built = build_engines(engines or default_engine_names(), settings.engine_specs(), catalog, Path(settings.cache_dir))
    return run_evaluation(workspace, retrieve_all(built, chosen, k, catalog), chosen, k, None, progress=False)


def judgments_frame(workspace: Workspace, split: str = "dev", queries: int | None = None, per_query: int | None = None) -> pd.DataFrame:
    """One row a human-labelled pair: the human label, and what the store holds of the judge's (this program and
    model): its label, reasoning, confidence and flags (empty where it has not judged the pair)."""
    labelled = workspace.labelled
    humans = labelled.select(split, queries, per_query)
    outcomes = workspace.stored_judgments([h.pair for h in humans])
    rows = []
    for human in humans:
        outcome = outcomes[human.pair]
        row = outcome.value if outcome.ok else None
        rows.append({
            "query_id": human.query_id, "query": human.query, "product_id": human.product_id, "title": labelled.catalog[human.product_id].title,
            "human_label": str(human.label), "human_original": human.original_label, "judge_status": outcome.status,
            "judge_label": row.label if row else None, "reasoning": row.reasoning if row else None,
            "confidence": row.confidence if row else None, "flags": row.flags if row else None,
        })
    return pd.DataFrame(rows)


def evaluation_frame(workspace: Workspace, run_id: str | None = None) -> pd.DataFrame:
    """An evaluation's per-query metrics, one row a query and engine, scored again from the store (no LM call)."""
    stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), run_id)
    evaluation = rescored(workspace_of(stored, workspace), stored)
    texts = {q.query_id: q.text for q in evaluation.queries}
    frames = []
    for engine, metrics in evaluation.metrics.items():
        frame = metrics.per_query.reset_index()
        frame.insert(0, "engine", engine)
        frame.insert(2, "query", frame["query_id"].map(texts))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def load_program(workspace: Workspace, name: str | None = None) -> Annotator:
    """A compiled program as the DSPy module it is (default: the one the workspace uses; ``"uncompiled"``: the plain
    program). Call it, or its steps, inside ``workspace.using_model()``: e.g. ``program.judge(query=..., guidelines=...,
    product=...)``; every call goes through the store."""
    if name is None:
        return workspace.annotator
    if name == UNCOMPILED:
        return Annotator(workspace.settings.guidelines, workspace.settings.chain_of_thought, refinement=workspace.refinement)
    return load_artifact(name, workspace.program_dirs)[0]


def judge(workspace: Workspace, query: str, product_id: str) -> dspy.Prediction:
    """One judgment through the store (paid once, the query's guidelines too when they are not there yet): the label,
    the reasoning, and the guidelines it read."""
    pair = Pair(query_id_for(query), query, product_id)
    run = AnnotationRun(workspace.judging(), workspace.labelled.catalog, progress=False)
    run.run([pair])
    outcome, made = run.outcomes.get(pair), run.guidelines.get(query)
    row = outcome.value if outcome is not None else None
    guidelines = made.value.guidelines if made is not None and made.ok else None
    status = outcome.status if outcome is not None else made.status if made is not None else "missing"
    return dspy.Prediction(label=row.label if row else None, reasoning=row.reasoning if row else None, guidelines=guidelines, status=status)

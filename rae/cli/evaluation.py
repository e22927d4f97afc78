"""Commands that compare engines: evaluate, engines."""

from pathlib import Path
from typing import Annotated

import typer

from rae.annotate.cost_estimate import estimate_cost, spending_limit
from rae.cli.options import (
    BudgetOption,
    ConfigOption,
    DryRunOption,
    GuidelinesOption,
    JsonOption,
    JudgeModeOption,
    MlflowOption,
    ModelOption,
    ProgramOption,
    StoreOption,
    WorkersOption,
    show,
    track,
    workspace_from,
)
from rae.config import load_settings
from rae.evaluate.queries import evaluation_queries
from rae.evaluate.run import run_evaluation
from rae.jsonout import dumps
from rae.retrieve.build import build_engines, default_engine_names, dense_available
from rae.retrieve.rankings import retrieve_all, union_of_pairs


def evaluate(
    engines: Annotated[str | None, typer.Option("--engines", help="comma-separated engine names (see `rae engines`)")] = None,
    queries: Annotated[int, typer.Option("--queries", help="how many queries")] = 20,
    split: Annotated[str | None, typer.Option("--split", help="use the labelled set's queries of this split (enables the validity check)")] = None,
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="a sample written by `rae queries sample`")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the log sample")] = 0,
    k: Annotated[int, typer.Option("--k", help="judge and score the top k of each engine")] = 10,
    as_json: JsonOption = False,
    mlflow: MlflowOption = True,
    workers: WorkersOption = None,
    dry_run: DryRunOption = False,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
    program: ProgramOption = None,
    judge_mode: JudgeModeOption = None,
) -> None:
    """Retrieve with each engine, judge the union of their top k through the store, compare the engines.

    Queries come from --queries-file, else from the labelled set's --split, else from a frequency-stratified sample of
    the search log. Writes reports/<run-id>/ (Markdown, HTML with plots, JSON, per-query CSV, TREC runs)."""
    workspace = workspace_from(config, model, store, guidelines, workers=workers, program=program, judge_mode=judge_mode)
    settings, catalog = workspace.settings, workspace.labelled.catalog
    names = [n.strip() for n in engines.split(",")] if engines else default_engine_names()
    chosen = evaluation_queries(workspace.labelled, settings.search_log, queries, split, queries_file, seed)
    retrievals = retrieve_all(build_engines(names, settings.engine_specs(), catalog, Path(settings.cache_dir)), chosen, k, catalog)
    if dry_run:
        estimate = estimate_cost(workspace.steps(), union_of_pairs(chosen, retrievals), catalog)
        typer.echo(dumps({"dry_run": estimate.as_dict()}) if as_json else estimate.line())
        return
    limit = spending_limit(workspace.steps(), union_of_pairs(chosen, retrievals), catalog, budget) if budget is not None else None
    run = run_evaluation(workspace, retrievals, chosen, k, limit, progress=not as_json)
    run.mlflow_run_id = track(workspace, mlflow, "evaluate", run.run_id, run.mlflow_fields(), run.report_dir)
    show(run, as_json)


def engines_list(config: ConfigOption = None) -> None:
    """The engines rae knows: the built-in ones and those in the config file."""
    for name, spec in load_settings(config).engine_specs().items():
        note = "" if spec.kind != "dense" or dense_available() else "  (needs: pip install 'rae[dense]')"
        typer.echo(f"{name:20} {spec.model_dump_json(exclude={'kind'})} [{spec.kind}]{note}")

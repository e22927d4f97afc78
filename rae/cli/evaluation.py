"""Commands that compare engines: evaluate, engines, report (score an evaluation again), plan (how many human labels)."""

from pathlib import Path
from typing import Annotated

import typer

from rae.annotate.cost_estimate import estimate_cost
from rae.annotate.spending import open_budget
from rae.cli.options import (
    BatchFileOption,
    BatchOption,
    BudgetOption,
    ConfigOption,
    DryRunOption,
    GuidelinesOption,
    JsonOption,
    JudgeModeOption,
    MlflowOption,
    ModelOption,
    ProcessesOption,
    ProgramOption,
    RayOption,
    StoreOption,
    WorkersOption,
    placement,
    show,
    track,
    workspace_from,
)
from rae.config import ConfigError, load_settings
from rae.evaluate.judge_beliefs import spreads
from rae.evaluate.plan import holds_earlier_labels, plan_labels
from rae.evaluate.queries import evaluation_queries
from rae.evaluate.report import write_report
from rae.evaluate.run import EvaluationRun, run_evaluation
from rae.evaluate.stored_run import load_evaluation, rescored, workspace_of
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
    processes: ProcessesOption = None,
    ray: RayOption = None,
    batch: BatchOption = False,
    batch_file: BatchFileOption = None,
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
        estimate = estimate_cost(workspace.judging(), union_of_pairs(chosen, retrievals), catalog)
        typer.echo(dumps({"dry_run": estimate.as_dict()}) if as_json else estimate.line())
        return
    ledger = open_budget(workspace.store, workspace.paid_models(), budget) if budget is not None else None
    run = run_evaluation(workspace, retrievals, chosen, k, ledger, not as_json, placement(workspace, processes, ray, batch, batch_file))
    run.mlflow_run_id = track(workspace, mlflow, "evaluate", run.run_id, run.mlflow_fields(), run.report_dir)
    show(run, as_json)


def engines_list(config: ConfigOption = None) -> None:
    """The engines rae knows: the built-in ones and those in the config file."""
    for name, spec in load_settings(config).engine_specs().items():
        note = "" if spec.kind != "dense" or dense_available() else "  (needs: pip install 'rae[dense]')"
        typer.echo(f"{name:20} {spec.model_dump_json(exclude={'kind'})} [{spec.kind}]{note}")


def report(
    run_id: Annotated[str | None, typer.Argument(help="the evaluation's run id (default: the latest)")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Score an evaluation again from the store, with the human labels it holds now (say, after the review page);
    rewrite its report. No LM call."""
    base = workspace_from(config, None, store, None)
    stored = load_evaluation(base.store, Path(base.settings.reports_dir), run_id)
    workspace = workspace_of(stored, base)
    evaluation = rescored(workspace, stored)
    described = {**workspace.describe(), "run_id": stored.run_id}
    run = EvaluationRun(stored.run_id, evaluation, described, write_report(evaluation, described, stored.directory))
    show(run, as_json)


def plan(
    target_width: Annotated[float, typer.Option("--target-width", help="the full width of the 95% interval wanted")] = 0.05,
    run_id: Annotated[str | None, typer.Option("--run", help="the evaluation to plan for (default: the latest)")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="default ndcg@k")] = None,
    margin: Annotated[float | None, typer.Option("--margin", help="plan for a decisive `rae gate` at this margin")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """How many queries humans should label to know each engine's metric (and each difference) that precisely, with
    the judge's help (prediction-powered) and without it, and what it would cost; with --margin, how many a gate's
    verdict needs to be decisive."""
    base = workspace_from(config, None, store, None)
    stored = load_evaluation(base.store, Path(base.settings.reports_dir), run_id)
    workspace = workspace_of(stored, base)
    evaluation = rescored(workspace, stored)
    if evaluation.corrected is None or not evaluation.corrected.human_metrics:
        raise ConfigError("no evaluated query has its whole pool labelled by humans yet: rae review queue --for-evaluation, then rae review serve")
    pools = stored.pools()
    pairs_per_query = sum(map(len, pools.values())) / max(len(pools), 1)
    chosen = metric or evaluation.main_metric
    corrected = evaluation.corrected
    holding = workspace.human_labels_before(corrected.draw.made_at) if holds_earlier_labels(corrected) else None
    judge = spreads(workspace, stored, chosen, known=holding)
    show(plan_labels(evaluation, judge.rows, chosen, target_width, pairs_per_query, workspace.settings.human_cost_per_pair, margin, judge.kappa),
         as_json)

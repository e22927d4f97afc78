"""Commands that turn measurements into changes: gate (a release decision for CI) and tune-engine (an engine's
parameters against the judge)."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rae.annotate.spending import open_budget
from rae.cli.options import (
    BudgetOption,
    ConfigOption,
    JsonOption,
    ModelOption,
    ProgramOption,
    StoreOption,
    WorkersOption,
    workspace_from,
)
from rae.errors import RaeError
from rae.evaluate.queries import evaluation_queries
from rae.evaluate.run import run_evaluation
from rae.improve.engine_study import StudyPlan, append_engine, run_engine_study
from rae.improve.gate import USAGE_ERROR, gate_verdict
from rae.improve.tuning import TuningCaps
from rae.jsonout import dumps
from rae.retrieve.build import build_engines
from rae.retrieve.rankings import retrieve_all
from rae.secrets import redact


def gate(
    baseline: Annotated[str, typer.Option("--baseline", help="the engine in production")],
    candidate: Annotated[str, typer.Option("--candidate", help="the engine to release")],
    metric: Annotated[str | None, typer.Option("--metric", help="default ndcg@k")] = None,
    margin: Annotated[float, typer.Option("--margin", min=0.0, help="the loss the release may cost at most")] = 0.01,
    queries: Annotated[int, typer.Option("--queries", help="how many queries")] = 20,
    split: Annotated[str | None, typer.Option("--split", help="the labelled set's queries of this split")] = None,
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="a query set (rae's sample, SRW's, text or CSV)")] = None,
    k: Annotated[int, typer.Option("--k", help="judge and score the top k of each engine")] = 10,
    junit: Annotated[Path | None, typer.Option("--junit", help="write the verdict as JUnit XML (CI test reports)")] = None,
    summary: Annotated[Path | None, typer.Option("--summary", help="append the verdict as Markdown (default: $GITHUB_STEP_SUMMARY when set)")] = None,
    as_json: JsonOption = False,
    workers: WorkersOption = None,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Is the candidate no worse than the baseline by more than the margin? Exit 0 pass, 1 fail, 3 inconclusive, 2 a
    usage error. Both engines are evaluated through the store (stored judgments are reused, not paid again)."""
    try:
        if baseline == candidate:
            raise typer.BadParameter("--baseline and --candidate name the same engine")
        workspace = workspace_from(config, model, store, None, workers=workers, program=program)
        catalog = workspace.labelled.catalog
        chosen = evaluation_queries(workspace.labelled, workspace.settings.search_log, queries, split, queries_file, 0)
        engines = build_engines([baseline, candidate], workspace.settings.engine_specs(), catalog, Path(workspace.settings.cache_dir))
        retrievals = retrieve_all(engines, chosen, k, catalog)
        ledger = open_budget(workspace.store, workspace.paid_models(), budget) if budget is not None else None
        run = run_evaluation(workspace, retrievals, chosen, k, ledger, progress=not as_json)
        verdict = gate_verdict(run.evaluation, baseline, candidate, metric or run.evaluation.main_metric, margin, run.report_dir, run.run_id)
    except (RaeError, KeyError) as exc:
        message = str(exc) if isinstance(exc, RaeError) else f"unknown metric {exc}"
        print(f"rae: error: {redact(message)}", file=sys.stderr)
        raise typer.Exit(USAGE_ERROR) from None
    if junit is not None:
        junit.write_text(verdict.junit_xml())
    summary = summary or (Path(os.environ["GITHUB_STEP_SUMMARY"]) if os.environ.get("GITHUB_STEP_SUMMARY") else None)
    if summary is not None:
        with summary.open("a") as handle:
            handle.write(verdict.markdown())
    typer.echo(dumps(verdict.as_dict()) if as_json else verdict.markdown())
    raise typer.Exit(verdict.exit_code)


def tune_engine(
    engine: Annotated[str, typer.Argument(help="the engine to tune (its tune table in rae.toml says what and within which range)")],
    trials: Annotated[int, typer.Option("--trials", min=1, help="trials in all (a resumed study runs only the rest)")] = 20,
    queries: Annotated[int, typer.Option("--queries", help="how many queries (tuning and held-out together)")] = 40,
    split: Annotated[str | None, typer.Option("--split", help="the labelled set's queries of this split")] = "dev",
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="a query set instead")] = None,
    heldout_share: Annotated[float, typer.Option("--heldout-share", min=0.0, max=0.9, help="the share of queries the study never sees")] = 0.3,
    k: Annotated[int, typer.Option("--k")] = 10,
    metric: Annotated[str | None, typer.Option("--metric", help="default ndcg@k")] = None,
    max_new_pairs: Annotated[int | None, typer.Option("--max-new-pairs", help="judge at most this many new pairs in all")] = None,
    study: Annotated[str | None, typer.Option("--study", help="study name; the same name continues a study (default: the engine's)")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL (default: sqlite beside the store, in the cache dir)")] = None,
    simulated_judge: Annotated[float | None, typer.Option("--simulated-judge", help="a simulated judge at this kappa, on the labelled set (a study of the tuner)")] = None,
    human_queries: Annotated[int, typer.Option("--human-queries", help="simulated: queries of each part that count as human-labelled")] = 10,
    write_config: Annotated[bool, typer.Option("--write-config/--no-write-config", help="append the best trial to rae.toml as <engine>-tuned")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
    workers: WorkersOption = None,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Tune an engine's parameters against the judge (PPI-corrected where humans labelled), then check the best on
    held-out queries. The best trial is written as a new engine to evaluate or gate."""
    workspace = workspace_from(config, model, store, None, workers=workers, program=program)
    chosen = evaluation_queries(workspace.labelled, workspace.settings.search_log, queries, None if queries_file else split, queries_file, seed)
    name = study or f"{engine}" + (f"-simulated-{simulated_judge:g}" if simulated_judge is not None else "")
    Path(workspace.settings.cache_dir).mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{Path(workspace.settings.cache_dir) / 'tune-engine.db'}"
    plan = StudyPlan(engine, chosen, heldout_share, k, metric or f"ndcg@{k}", TuningCaps(trials, max_new_pairs, seed), name, url, budget,
                     simulated_judge, human_queries)
    result, page = run_engine_study(workspace, plan, progress=not as_json)
    if write_config and result.tuned_toml and simulated_judge is None:
        result.notes.append(append_engine(config or Path("rae.toml"), result.tuned_toml))
    typer.echo(dumps({**result.as_dict(), "report": str(page)}) if as_json else f"{result.markdown()}\nreport: {page}")

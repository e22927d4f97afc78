"""Commands that fit the program to the human labels: optimize, tune, programs list."""

from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import (
    ConfigOption,
    GuidelinesOption,
    JsonOption,
    MlflowOption,
    ModelOption,
    StoreOption,
    show,
    track,
    workspace_from,
)
from rae.config import load_settings
from rae.jsonout import dumps
from rae.optimize.compile import Budget, OptimizerName
from rae.optimize.run import Slices, optimize_program
from rae.optimize.tune import tune as run_tune
from rae.programs.artifacts import UNCOMPILED, list_artifacts
from rae.workspace import Workspace


def optimize(
    optimizer: Annotated[OptimizerName, typer.Option("--optimizer", help="labeled, random-search, mipro or gepa")] = "random-search",
    name: Annotated[str | None, typer.Option("--name", help="artifact name (default judge-<model>)")] = None,
    train_queries: Annotated[int, typer.Option("--train-queries")] = Slices.train_queries,
    dev_queries: Annotated[int, typer.Option("--dev-queries")] = Slices.dev_queries,
    test_queries: Annotated[int, typer.Option("--test-queries")] = Slices.test_queries,
    per_query: Annotated[int, typer.Option("--per-query")] = Slices.per_query,
    demos: Annotated[int, typer.Option("--demos", help="most bootstrapped demos")] = Budget.demos,
    labeled_demos: Annotated[int, typer.Option("--labeled-demos", help="most labelled demos")] = Budget.labeled_demos,
    candidates: Annotated[int, typer.Option("--candidates", help="random search: extra random demo sets")] = Budget.candidates,
    mipro_trials: Annotated[int, typer.Option("--mipro-trials")] = Budget.mipro_trials,
    gepa_calls: Annotated[int, typer.Option("--gepa-calls", help="GEPA: most metric calls")] = Budget.gepa_metric_calls,
    whole_program: Annotated[bool, typer.Option("--whole-program", help="compile requirements and guidelines too, not only the judge")] = False,
    as_json: JsonOption = False,
    mlflow: MlflowOption = True,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
) -> None:
    """Compile the program against the human labels (train), select on dev, report on test; save a versioned artifact."""
    workspace = workspace_from(config, model, store, guidelines, program=UNCOMPILED)
    budget = Budget(demos, labeled_demos, candidates, mipro_trials, gepa_calls, workspace.workers)
    slices = Slices(train_queries, dev_queries, test_queries, per_query)
    outcome = optimize_program(workspace, optimizer, budget, slices, name or f"judge-{model_slug(workspace)}", whole_program, not as_json)
    track(workspace, mlflow, "optimize", outcome.manifest.artifact_id, outcome.mlflow_fields(), Path(outcome.directory))
    show(outcome, as_json)


def tune(
    trials: Annotated[int, typer.Option("--trials", help="trials to add to the study")] = 6,
    study: Annotated[str, typer.Option("--study", help="study name; the same name continues a study")] = "rae-tune",
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL (default sqlite in the cache dir)")] = None,
    train_queries: Annotated[int, typer.Option("--train-queries")] = Slices.train_queries,
    dev_queries: Annotated[int, typer.Option("--dev-queries")] = Slices.dev_queries,
    per_query: Annotated[int, typer.Option("--per-query")] = Slices.per_query,
    save: Annotated[bool, typer.Option("--save/--no-save", help="save the best trial as a compiled program (scored on test too)")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
) -> None:
    """Tune the knobs that are not prompts (demos, product fields and length, chain of thought) with Optuna."""
    workspace = workspace_from(config, model, store, guidelines, program=UNCOMPILED)
    slices = Slices(train_queries, dev_queries, Slices.test_queries, per_query)
    Path(workspace.settings.cache_dir).mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{Path(workspace.settings.cache_dir) / 'optuna.db'}"
    save_as = f"tuned-{model_slug(workspace)}" if save else None
    show(run_tune(workspace, study, url, trials, slices, seed, save_as, not as_json), as_json)


def programs_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The compiled programs that ship with rae or that `rae optimize` wrote, oldest first."""
    manifests = list_artifacts(Workspace(load_settings(config)).program_dirs)
    if as_json:
        typer.echo(dumps([vars(m) for m in manifests]))
        return
    if not manifests:
        typer.echo("no compiled programs yet: run `rae optimize`")
    for m in manifests:
        test = m.scores.get("test", {})
        kappas = " ".join(f"{p} {s['kappa']['value']:.3f}" for p, s in test.items())
        typer.echo(f"{m.artifact_id:28} {m.model:24} {m.optimizer.get('name', '?'):14} test kappa: {kappas}  {m.created}")


def model_slug(workspace: Workspace) -> str:
    return workspace.settings.model.name.split("/")[-1].replace(".", "-")

"""Commands that study the judge: ablate, errors, injection, audit, ppi-check."""

from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import (
    ConfigOption,
    JsonOption,
    MlflowOption,
    ModelOption,
    PerQueryOption,
    ProgramOption,
    QueriesOption,
    SplitOption,
    StoreOption,
    show,
    track,
    workspace_from,
)
from rae.retrieve.build import build_engines
from rae.retrieve.rankings import retrieve_all
from rae.studies.ablation import ablate as run_ablation
from rae.studies.ablation import chosen_variants
from rae.studies.error_analysis import analyse_errors
from rae.studies.injection import adversarial_judgments, measure_injection
from rae.studies.output_audit import audit_outputs
from rae.studies.ppi_coverage import condensed_lists, coverage_study, human_gains, judge_gains, raising_judge, simulated_judge


def ablate(
    split: SplitOption = "test",
    queries: QueriesOption = 8,
    per_query: PerQueryOption = 10,
    variants: Annotated[str | None, typer.Option("--variants", help="comma-separated variant names (default: all that apply)")] = None,
    model_b: Annotated[str | None, typer.Option("--model-b", help="add a variant judged by this model")] = None,
    as_json: JsonOption = False,
    mlflow: MlflowOption = True,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Judge the same human-labelled pairs with program variants; kappa with CIs and paired tests against the first."""
    workspace = workspace_from(config, model, store, None)
    names = [v.strip() for v in variants.split(",")] if variants else None
    judgments = workspace.labelled.select(split, queries, per_query)
    ablation = run_ablation(workspace, chosen_variants(workspace, names, model_b), judgments, split, not as_json)
    track(workspace, mlflow, "ablate", f"ablate-{split}", ablation.mlflow_fields())
    show(ablation, as_json)


def errors(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    limit: Annotated[int, typer.Option("--limit", help="analyse at most this many disagreements (hard ones first)")] = 100,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Group the judge's disagreements with the human labels by cause: brand, product type, colour, size, category,
    too strict, misread the query. The cause is named by an LLM with the query's requirements in hand."""
    workspace = workspace_from(config, model, store, None, program=program)
    analysis = analyse_errors(workspace, workspace.labelled.select(split, queries, per_query), limit, not as_json)
    show(analysis, as_json, f"split {split} · {workspace.header()}", split=split, **workspace.describe())


def injection(
    split: SplitOption = "dev",
    pairs: Annotated[int, typer.Option("--pairs", help="how many human-irrelevant pairs to attack")] = 24,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Measure how often instructions hidden in a listing flip the judge's label, with and without rae's defences."""
    workspace = workspace_from(config, model, store, None)
    show(measure_injection(workspace, adversarial_judgments(workspace, split, pairs), split, not as_json), as_json)


def audit(
    all_models: Annotated[bool, typer.Option("--all-models", help="every row of the store, not only this model's")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Run the output checks over the store: placeholder requirements, guidelines and reasoning, stage by stage."""
    workspace = workspace_from(config, model, store, None)
    show(audit_outputs(workspace.store, None if all_models else workspace.model.identity), as_json)


def ppi_check(
    split: SplitOption = "all",
    queries: QueriesOption = None,
    engines: Annotated[str, typer.Option("--engines", help="comma-separated engine names")] = "bm25-title,bm25-full",
    k: Annotated[int, typer.Option("--k")] = 10,
    sizes: Annotated[str, typer.Option("--sizes", help="how many queries humans label, comma-separated")] = "10,20,40",
    repetitions: Annotated[int, typer.Option("--repetitions")] = 1000,
    kappas: Annotated[str, typer.Option("--kappas", help="simulated judges agreeing with the humans at these kappas")] = "0.4,0.6,0.8",
    with_judge: Annotated[bool, typer.Option("--judge/--no-judge", help="also the configured model's judgments (judged through the store)")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Are the prediction-powered intervals honest? Their coverage and width against the humans-only ones, on the
    bundled labelled set, with simulated judges and (by default) the configured model's own judgments."""
    workspace = workspace_from(config, model, store, None, program=program)
    labelled = workspace.labelled
    humans = labelled.select(split, queries)  # the population: the split's queries, or its first N (a smaller study)
    names = [e.strip() for e in engines.split(",")]
    built = build_engines(names, workspace.settings.engine_specs(), labelled.catalog, Path(workspace.settings.cache_dir))
    retrievals = retrieve_all(built, labelled.queries(split, queries), k, labelled.catalog)
    lists = condensed_lists({r.name: r.rankings for r in retrievals}, humans)
    judges = {f"simulated, kappa {kappa}": simulated_judge(humans, float(kappa), seed) for kappa in kappas.split(",") if kappa.strip()}
    judges["simulated, raises 30% of labels"] = raising_judge(humans, 0.3, seed)
    if with_judge:
        judges[f"{workspace.settings.model.name} ({workspace.describe()['program']})"] = judge_gains(workspace, lists, not as_json)
    sizes_asked = tuple(int(s) for s in sizes.split(",") if s.strip())
    show(coverage_study(lists, human_gains(humans), judges, k, sizes_asked, repetitions, seed), as_json)

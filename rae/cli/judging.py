"""Commands that judge pairs and study the judge: annotate, agreement, ablate, errors, injection."""

from pathlib import Path
from typing import Annotated

import typer

from rae.annotate.cost_estimate import estimate_cost, spending_limit
from rae.annotate.run import AnnotationRun
from rae.cli.options import (
    BudgetOption,
    ConfigOption,
    DryRunOption,
    GuidelinesOption,
    JsonOption,
    JudgeModeOption,
    MlflowOption,
    ModelOption,
    PerQueryOption,
    ProgramOption,
    QueriesOption,
    SplitOption,
    StoreOption,
    WorkersOption,
    show,
    track,
    workspace_from,
)
from rae.datasets.judgments import load_pairs
from rae.jsonout import dumps
from rae.store.human_labels import latest_reviews
from rae.studies.ablation import ablate as run_ablation
from rae.studies.ablation import chosen_variants
from rae.studies.agreement import agreement_report, side_by_side
from rae.studies.error_analysis import analyse_errors
from rae.studies.human_agreement import human_agreement, human_pairs
from rae.studies.injection import adversarial_judgments, measure_injection


def annotate(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="judge the pairs in this file (columns query_id, query, product_id) instead of a split")] = None,
    workers: WorkersOption = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="call the LM again for stored parse failures")] = False,
    dry_run: DryRunOption = False,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
    program: ProgramOption = None,
    judge_mode: JudgeModeOption = None,
) -> None:
    """Judge query-product pairs into the store. Rerunning continues where a run stopped; stored work is never paid twice."""
    workspace = workspace_from(config, model, store, guidelines, workers=workers, program=program, judge_mode=judge_mode)
    catalog = workspace.labelled.catalog
    chosen = load_pairs(pairs) if pairs else workspace.labelled.pairs(split, queries, per_query)
    if dry_run:
        typer.echo(estimate_cost(workspace.steps(), chosen, catalog).line())
        return
    limit = spending_limit(workspace.steps(), chosen, catalog, budget) if budget is not None else None
    with workspace.store.recorded_run("annotate", workspace.settings.model_dump()) as run, workspace.using_model():
        summary = AnnotationRun(workspace.steps(run.run_id, retry_failed), catalog, workspace.workers, limit=limit).run(chosen)
        run.counts = summary.as_dict()
    typer.echo(f"annotate {run.run_id} · {workspace.header()}\n{summary.line()}")


def agreement(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    as_json: JsonOption = False,
    reviews: Annotated[bool, typer.Option("--with-reviews", help="include the pairs only human reviewers labelled")] = False,
    humans: Annotated[bool, typer.Option("--human-vs-human", help="also report agreement among humans on pairs several labelled")] = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
    program: ProgramOption = None,
    judge_mode: JudgeModeOption = None,
) -> None:
    """Agreement of the stored LLM labels (this program and model) with the human labels of a split. Makes no LM calls."""
    workspace = workspace_from(config, model, store, guidelines, program=program, judge_mode=judge_mode, with_reviews=reviews or None)
    labelled = workspace.labelled
    labels = labelled.select(split, queries, per_query)
    report = agreement_report(side_by_side(labels, workspace.steps().stored_judgments([j.pair for j in labels], labelled.catalog), labelled.catalog))
    among_humans = human_agreement(human_pairs(labelled, latest_reviews(workspace.store))) if humans else None
    if as_json:
        extra = {"human_vs_human": among_humans.as_dict()} if among_humans else {}
        typer.echo(dumps({**report.as_dict(), "split": split, "labelled_set": labelled.fingerprint(), **workspace.describe(), **extra}))
        return
    typer.echo(f"split {split} · labelled set {labelled.name} ({labelled.fingerprint()}) · {workspace.header()}\n")
    typer.echo(report.markdown())
    if among_humans is not None:
        typer.echo("\n" + among_humans.markdown())


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

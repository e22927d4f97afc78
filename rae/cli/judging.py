"""Commands that judge pairs and measure the judgments against the humans: annotate, agreement (one judge or a panel)."""

from pathlib import Path
from typing import Annotated

import typer

from rae.annotate.cost_estimate import estimate_cost
from rae.cli.options import (
    BatchFileOption,
    BatchOption,
    BudgetOption,
    ConfigOption,
    DryRunOption,
    GuidelinesOption,
    JsonOption,
    JudgeModeOption,
    JudgesOption,
    ModelOption,
    PerQueryOption,
    ProcessesOption,
    ProgramOption,
    QueriesOption,
    RayOption,
    SplitOption,
    StoreOption,
    WorkersOption,
    judge_names,
    placement,
    show,
    workspace_from,
)
from rae.config import ConfigError
from rae.datasets.judgments import load_pairs
from rae.jsonout import dumps
from rae.scaleout.runner import annotate_recorded
from rae.store.human_labels import latest_ratings
from rae.studies.agreement import agreement_report, side_by_side
from rae.studies.human_agreement import click_agreement, human_pairs, rater_agreement
from rae.studies.panel import annotate_panel, judge_workspaces, panel_agreement


def annotate(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="judge the pairs in this file (columns query_id, query, product_id) instead of a split")] = None,
    workers: WorkersOption = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="call the LM again for stored parse failures")] = False,
    processes: ProcessesOption = None,
    ray: RayOption = None,
    batch: BatchOption = False,
    batch_file: BatchFileOption = None,
    dry_run: DryRunOption = False,
    budget: BudgetOption = None,
    judges: JudgesOption = None,
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
    if judges:
        if processes or ray or batch or batch_file:
            raise ConfigError("--judges runs the judges here, one after the other: it takes no --processes, --ray, --batch or --batch-file")
        panel = judge_workspaces(workspace, judge_names(judges))
        if dry_run:
            for name, member in panel.items():
                typer.echo(f"judge {name}: {estimate_cost(member.judging(), chosen, catalog).line()}")
            return
        summaries = annotate_panel(panel, chosen, retry_failed, budget)
        for name, summary in summaries.items():
            typer.echo(f"judge {name}: {summary.line()}")
        _judged_something(list(summaries.values()))
        return
    if dry_run:
        typer.echo(estimate_cost(workspace.judging(), chosen, catalog).line())
        return
    run_id, summary = annotate_recorded(workspace, chosen, placement(workspace, processes, ray, batch, batch_file), retry_failed, budget)
    typer.echo(f"annotate {run_id} · {workspace.header()}\n{summary.line()}")
    _judged_something([summary])


def _judged_something(summaries: list) -> None:
    """A run asked for pairs that has a judgment of none of them (every call failed, or every query lacked guidelines)
    exits 1, so a script does not take it for done; one the budget stopped, or one waiting for a batch, does not."""
    if any(s.judged_nothing and not s.stopped_by_budget and not s.deferred for s in summaries):
        typer.echo("rae: error: no pair was judged (see the line above)", err=True)
        raise typer.Exit(1)


def agreement(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    as_json: JsonOption = False,
    reviews: Annotated[bool, typer.Option("--with-reviews", help="include the pairs only human reviewers labelled")] = False,
    humans: Annotated[bool, typer.Option("--human-vs-human", help="also report agreement among humans on pairs several labelled")] = False,
    clicks: Annotated[bool, typer.Option("--clicks", help="also report how the click judgments (judgments from-clicks) agree with the humans")] = False,
    judges: JudgesOption = None,
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
    if judges:
        panel = judge_workspaces(workspace, judge_names(judges))
        other_raters = human_pairs(labelled, [r for kind in ("human", "llm", "clicks") for r in latest_ratings(workspace.store, kind)])
        show(panel_agreement(panel, labels, other_raters, workspace.settings.panel_ties), as_json, split=split)
        return
    rated = latest_ratings(workspace.store) if humans or clicks else []
    among_humans = rater_agreement(human_pairs(labelled, rated)) if humans else None
    with_clicks = click_agreement(labelled, rated, latest_ratings(workspace.store, "clicks")) if clicks else None
    stored = workspace.stored_judgments([j.pair for j in labels])
    if with_clicks is not None and not any(o.ok for o in stored.values()) and not as_json:  # the clicks against the humans need no judge
        typer.echo(with_clicks.markdown())
        return
    report = agreement_report(side_by_side(labels, stored, labelled.catalog))
    if as_json:
        extra = {"human_vs_human": among_humans.as_dict()} if among_humans else {}
        extra |= {"clicks_vs_humans": with_clicks.as_dict()} if with_clicks else {}
        typer.echo(dumps({**report.as_dict(), "split": split, "labelled_set": labelled.fingerprint(), **workspace.describe(), **extra}))
        return
    typer.echo(f"split {split} · labelled set {labelled.name} ({labelled.fingerprint()}) · {workspace.header()}\n")
    typer.echo(report.markdown())
    for table in (among_humans, with_clicks):
        if table is not None:
            typer.echo("\n" + table.markdown())









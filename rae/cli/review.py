"""Commands of the review loop: queue the hard cases, serve the review page."""

import threading
from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import (
    BudgetOption,
    ConfigOption,
    JudgesOption,
    ModelOption,
    ProgramOption,
    SplitOption,
    StoreOption,
    judge_names,
    workspace_from,
)
from rae.evaluate.stored_run import evaluation_dir, load_evaluation
from rae.review.for_evaluation import Design, Strata, draw_for_evaluation
from rae.review.queue import build_queue, parse_mix
from rae.review.server import ReviewService, start_server
from rae.studies.panel import judge_workspaces


def queue(
    name: Annotated[str, typer.Option("--name", help="the queue's name (adding to an existing queue appends)")] = "review",
    size: Annotated[int, typer.Option("--size")] = 40,
    mix: Annotated[str, typer.Option("--mix", help="shares of confidence, disagreement and worst")] = "confidence:0.5,disagreement:0.3,worst:0.2",
    split: SplitOption = "dev",
    evaluation: Annotated[str | None, typer.Option("--evaluation", help="run id of an evaluation for its worst queries (default the latest)")] = None,
    for_evaluation: Annotated[
        str | None, typer.Option("--for-evaluation", help="instead: draw queries of this evaluation ('latest' for the latest) for humans to label whole")
    ] = None,
    n_queries: Annotated[int, typer.Option("--queries", help="with --for-evaluation: how many queries to draw")] = 10,
    design: Annotated[
        Design, typer.Option("--design", help="with --for-evaluation: uniform, stratified or active (more labels where the judge is unsure)")
    ] = "stratified",
    strata: Annotated[Strata, typer.Option("--strata", help="with --design stratified: by the judge's own spread, or the log's frequency band")] = "judge",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    judges: JudgesOption = None,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Queue the pairs a human should see: low confidence, hard disagreements with human labels, worst queries; or, with
    --for-evaluation, a random draw of an evaluation's queries whose labels correct its numbers (prediction-powered)."""
    workspace = workspace_from(config, model, store, None, program=program)
    reports = Path(workspace.settings.reports_dir)
    if for_evaluation is not None:
        stored = load_evaluation(workspace.store, reports, None if for_evaluation == "latest" else for_evaluation)
        panel = judge_workspaces(workspace, judge_names(judges)) if judges else None
        typer.echo(draw_for_evaluation(workspace, stored, n_queries, design, name, seed, strata, panel, budget).line())
        return
    shares = parse_mix(mix)
    report_dir = evaluation_dir(workspace.store, reports, evaluation)
    typer.echo(build_queue(workspace, name, size, shares, split, report_dir).line())


def serve(
    name: Annotated[str, typer.Option("--name", help="the queue to review")] = "review",
    port: Annotated[int, typer.Option("--port")] = 8765,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Serve the review page on 127.0.0.1: one key per label (1, 2, 3), every label saved at once."""
    workspace = workspace_from(config, model, store, None, program=program)
    server = start_server(ReviewService(workspace, name), port)
    typer.echo(f"review page: http://127.0.0.1:{server.server_address[1]}/?reviewer=<your name>  (Ctrl+C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()

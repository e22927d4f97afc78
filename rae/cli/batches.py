"""Commands about batches: list them, and store a results file (from a team's own GPUs, say)."""

from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import ConfigOption, JsonOption, ModelOption, StoreOption, workspace_from
from rae.jsonout import dumps
from rae.scaleout.batch import import_results
from rae.store.batches import all_batches


def batches_default(ctx: typer.Context, as_json: JsonOption = False, config: ConfigOption = None, store: StoreOption = None) -> None:
    """``rae batches`` alone lists them."""
    if ctx.invoked_subcommand is None:
        batches_list(as_json, config, store)


def batches_list(as_json: JsonOption = False, config: ConfigOption = None, store: StoreOption = None) -> None:
    """The batches rae sent or wrote, newest first: status, requests, what they cost (at the batch price)."""
    workspace = workspace_from(config, None, store, None)
    rows = all_batches(workspace.store)
    fields = ("batch_id", "provider", "model", "status", "requests", "completed", "failed", "stored", "cost_usd", "created_at", "finished_at")
    if as_json:
        typer.echo(dumps([{f: getattr(r, f) for f in fields} for r in rows]))
        return
    if not rows:
        typer.echo("no batch yet: rae annotate --batch (or --batch-file)")
    for r in rows:
        cost = "unknown cost" if r.cost_usd is None else f"${r.cost_usd:.4f}"
        typer.echo(f"{r.batch_id:40} {r.status:12} {r.completed}/{r.requests} done, {r.failed} failed, {'stored' if r.stored else 'not stored'}, {cost}, {r.model}")


def batches_import(
    path: Annotated[Path, typer.Argument(help="a results file: the Batch API's output lines, or vLLM run_batch's")],
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Store a results file for the batches that asked for it (written by rae annotate --batch-file)."""
    workspace = workspace_from(config, model, store, None)
    summary = import_results(workspace, path)
    typer.echo(f"{summary.line()}\nrun the same --batch-file command again for the next round (guidelines after requirements, then judgments)")

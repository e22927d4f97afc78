"""The ``rae`` command line. Each command is a thin layer: read settings, build the workspace, call one step."""

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from rae.config import Settings, load_settings
from rae.datasets.judgments import JudgmentColumns
from rae.datasets.readers import read_rows
from rae.datasets.records import Pair
from rae.errors import RaeError
from rae.eval.agreement import agreement_report, compare, to_markdown
from rae.eval.annotate import AnnotationRun
from rae.workspace import Workspace

app = typer.Typer(
    help="rae: LLM relevance judgments for e-commerce search, fitted to your human labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default: ./rae.toml if present)")]
ModelOption = Annotated[str | None, typer.Option("--model", help="LiteLLM model string, or local/smollm2 (the embedded default)")]
StoreOption = Annotated[str | None, typer.Option("--store", help="database URL (default sqlite:///.rae/rae.db)")]
GuidelinesOption = Annotated[
    Literal["query", "generic"] | None, typer.Option("--guidelines", help="query-specific guidelines, or the generic rubric")
]
SplitOption = Annotated[str, typer.Option("--split", help="train, dev, test or all")]
QueriesOption = Annotated[int | None, typer.Option("--queries", help="only the first N queries of the split")]
PerQueryOption = Annotated[int | None, typer.Option("--per-query", help="at most N pairs per query (a fixed sample)")]


def _workspace(config: Path | None, model: str | None, store: str | None, guidelines: str | None, **more: object) -> Workspace:
    settings: Settings = load_settings(config).with_overrides(model_name=model, store=store, guidelines=guidelines, **more)
    return Workspace(settings)


@app.command()
def annotate(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="judge the pairs in this file (columns query_id, query, product_id) instead of a split")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="concurrent LM calls")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="call the LM again for stored parse failures")] = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
) -> None:
    """Judge query-product pairs into the store. Rerunning continues where a run stopped; stored work is never paid twice."""
    workspace = _workspace(config, model, store, guidelines, workers=workers)
    chosen = _read_pairs(pairs) if pairs else workspace.labelled.pairs(split, queries, per_query)
    run_id = workspace.store.start_run("annotate", workspace.settings.model_dump())
    status = "aborted"
    try:
        with workspace.using_model():
            run = AnnotationRun(workspace.steps(run_id, retry_failed), workspace.labelled.catalog, workspace.workers)
            summary = run.run(chosen)
        status = "finished"
    finally:
        workspace.store.finish_run(run_id, status, summary.as_dict() if status == "finished" else {})
    typer.echo(f"annotate {run_id}: {summary.line()}")


@app.command()
def agreement(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a Markdown table")] = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
) -> None:
    """Agreement of the stored LLM labels (this program and model) with the human labels of a split. Makes no LM calls."""
    workspace = _workspace(config, model, store, guidelines)
    humans = workspace.labelled.select(split, queries, per_query)
    pairs = [Pair(h.query_id, h.query, h.product_id) for h in humans]
    outcomes = workspace.steps().stored_judgments(pairs, workspace.labelled.catalog)
    report = agreement_report(compare(humans, outcomes, workspace.labelled.catalog))
    if as_json:
        typer.echo(json.dumps({**report.as_dict(), "split": split, **workspace.describe()}, indent=2))
    else:
        described = workspace.describe()
        typer.echo(f"split {split} · model {described['model']} · guidelines {described['guidelines']} · program {described['program']}\n")
        typer.echo(to_markdown(report))


def _read_pairs(path: Path) -> list[Pair]:
    columns = JudgmentColumns()
    rows = read_rows(path, required=(columns.query_id, columns.query, columns.product_id))
    return [Pair(str(r.get(columns.query_id)), str(r.get(columns.query)), str(r.get(columns.product_id))) for r in rows]


def main() -> None:
    """The console script: a user-facing error is one line on stderr and exit status 1, never a traceback."""
    try:
        app()
    except RaeError as exc:
        print(f"rae: error: {exc}", file=sys.stderr)
        sys.exit(1)

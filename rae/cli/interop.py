"""Commands that move judgment lists between rae and the tools teams already use: judgments import, judgments export."""

from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import ConfigOption, ModelOption, PerQueryOption, ProgramOption, QueriesOption, StoreOption, workspace_from
from rae.datasets.judgment_files import Format
from rae.datasets.query_sets import read_query_set
from rae.interop.judgment_lists import Which, export_judgments, import_judgments, pairs_to_export

FormatOption = Annotated[Format, typer.Option("--format", help="trec, quepid-csv, quepid-book, srw, srw-csv, csv or jsonl")]
ScaleOption = Annotated[str | None, typer.Option("--scale", help="0-2, 0-3, 0-1, unit, percent or one of [rating_scales] (default: the format's)")]


def judgments_import(
    path: Annotated[Path, typer.Argument(help="the judgment file")],
    fmt: FormatOption = "csv",
    rater: Annotated[str, typer.Option("--rater", help="whose labels these are (a Quepid book names its judges itself)")] = "imported",
    kind: Annotated[str, typer.Option("--kind", help="human, or llm for another LLM judge's labels")] = "human",
    scale: ScaleOption = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Store a judgment list's labels as a rater's, for every command that reads human labels (and agreement among raters)."""
    workspace = workspace_from(config, None, store, None)
    typer.echo(import_judgments(workspace, path, fmt, rater, scale, kind).line())


def judgments_export(
    path: Annotated[Path, typer.Argument(help="where to write")],
    fmt: FormatOption = "csv",
    which: Annotated[Which, typer.Option("--labels", help="llm (the judge's), human, or both as separate raters")] = "llm",
    split: Annotated[str | None, typer.Option("--split", help="the labelled set's pairs of this split")] = None,
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    run_id: Annotated[str | None, typer.Option("--run", help="an evaluation's pools ('latest' for the latest)")] = None,
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="the stored judgments of a query set's queries")] = None,
    scale: ScaleOption = None,
    name: Annotated[str, typer.Option("--name", help="the list's name, where the format has one")] = "rae judgments",
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Write what the store holds for a split, an evaluation or a query set, in another tool's format."""
    workspace = workspace_from(config, model, store, None, program=program)
    query_set = read_query_set(queries_file) if queries_file else None
    pairs = pairs_to_export(workspace, split, queries, per_query, run_id, query_set)
    typer.echo(export_judgments(workspace, path, fmt, which, pairs, scale, name).line())

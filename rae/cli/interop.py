"""Commands that move judgment lists between rae and the tools teams already use (judgments import, export),
judgments from a UBI log's clicks (judgments from-clicks), and an evaluation's result lists out (lists export)."""

from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import ConfigOption, ModelOption, PerQueryOption, ProgramOption, QueriesOption, StoreOption, workspace_from
from rae.datasets.judgment_entries import Format
from rae.datasets.query_sets import read_query_set
from rae.datasets.readers import LogFormat
from rae.interop.click_judgments import DEFAULT_SCALE
from rae.interop.click_judgments import judgments_from_clicks as judgments_from_clicks_of
from rae.interop.judgment_lists import Which, export_judgments, import_judgments, pairs_to_export
from rae.interop.raters import CONSENSUS_RULES
from rae.interop.result_lists import export_snapshot

FORMAT_NAMES = "trec, quepid-csv, quepid-judgements, quepid-book, quepid-case, quepid-snapshot, quepid-detailed, quepid-ltr, rre, srw, srw-csv, csv or jsonl"
FormatOption = Annotated[Format, typer.Option("--format", help=FORMAT_NAMES)]
ScaleOption = Annotated[
    str | None,
    typer.Option("--scale", help="0-2, 0-3, 0-1, srw-esci, unit, percent, a Quepid scorer (nDCG@10, P@10...), a range like 1-5, or one of [rating_scales]"),
]


def judgments_import(
    path: Annotated[Path, typer.Argument(help="the judgment file (a Quepid export may stay zipped)")],
    fmt: Annotated[Format | None, typer.Option("--format", help=f"{FORMAT_NAMES}; default: the one the file's content shows")] = None,
    rater: Annotated[str | None, typer.Option("--rater", help="whose labels these are (default: the raters the file names, else the file's name)")] = None,
    kind: Annotated[str, typer.Option("--kind", help="human, or llm for another LLM judge's labels")] = "human",
    scale: ScaleOption = None,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="an empty list is fine (else it is an error)")] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Store a judgment list's labels as its raters', for every command that reads human labels (and agreement among raters)."""
    workspace = workspace_from(config, None, store, None)
    typer.echo(import_judgments(workspace, path, fmt, rater, scale, kind, allow_empty).line())


def judgments_export(
    path: Annotated[Path, typer.Argument(help="where to write")],
    fmt: FormatOption = "csv",
    which: Annotated[Which, typer.Option("--labels", help="llm (the judge's), human, or both as separate raters")] = "llm",
    split: Annotated[str | None, typer.Option("--split", help="the labelled set's pairs of this split")] = None,
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    run_id: Annotated[str | None, typer.Option("--run", help="an evaluation's pools ('latest' for the latest)")] = None,
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="the stored judgments of a query set's queries")] = None,
    rated: Annotated[bool, typer.Option("--rated", help="every pair a stored rater labelled (imported lists, reviews)")] = False,
    rater: Annotated[str | None, typer.Option("--rater", help="only this rater's labels")] = None,
    consensus: Annotated[str | None, typer.Option("--consensus", help=f"one rating a pair from several raters: {', '.join(CONSENSUS_RULES)}")] = None,
    rater_email: Annotated[list[str] | None, typer.Option("--rater-email", help="quepid-book, quepid-case: NAME=EMAIL (or EMAIL for one rater), as Quepid names judges")] = None,
    scale: ScaleOption = None,
    name: Annotated[str, typer.Option("--name", help="the list's name, where the format has one")] = "rae judgments",
    engine: Annotated[str | None, typer.Option("--engine", help="quepid-case: the opensearch, elasticsearch or solr engine whose search the case runs")] = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Write what the store holds (a split, an evaluation, a query set, or everything rated) in another tool's format."""
    if consensus is not None and consensus not in CONSENSUS_RULES:
        raise typer.BadParameter(f"--consensus {consensus}: known rules are {', '.join(CONSENSUS_RULES)}")
    workspace = workspace_from(config, model, store, None, program=program)
    query_set = read_query_set(queries_file) if queries_file else None
    pairs = pairs_to_export(workspace, split, queries, per_query, run_id, query_set, rated)
    typer.echo(export_judgments(workspace, path, fmt, which, pairs, scale, name, rater, consensus, rater_email, engine).line())


def judgments_from_clicks(
    logs: Annotated[list[Path], typer.Argument(help="UBI logs: ubi_queries and ubi_events, in one file or several (NDJSON, any name, .gz too)")],
    max_rank: Annotated[int, typer.Option("--max-rank", help="positions counted, from the top (SRW's maxRank)")] = 20,
    scale: Annotated[str, typer.Option("--scale", help="how a score becomes a label (thresholds:A,B: below A irrelevant, below B acceptable)")] = DEFAULT_SCALE,
    min_impressions: Annotated[int, typer.Option("--min-impressions", help="impressions a pair needs before its score counts")] = 1,
    log_format: Annotated[LogFormat | None, typer.Option("--log-format", help="jsonl, csv or parquet, when the file's name and content do not say")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Judgments from clicks, as SRW computes them (COEC: clicks over expected clicks), stored as the rater clicks:coec."""
    workspace = workspace_from(config, None, store, None)
    typer.echo(judgments_from_clicks_of(workspace, logs, max_rank, scale, min_impressions, log_format).line())


def lists_export(
    path: Annotated[Path, typer.Argument(help="where to write the CSV")],
    case_id: Annotated[int, typer.Option("--case-id", help="the Quepid case the snapshots go into (it must exist there)")],
    run_id: Annotated[str | None, typer.Option("--run", help="the evaluation (default: the latest)")] = None,
    engines: Annotated[str | None, typer.Option("--engines", help="comma-separated engines of the run (default: all)")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """An evaluation's result lists as Quepid imports a snapshot (Import Snapshot in a case): one snapshot an engine,
    to compare rae's engines with the team's own search in Quepid."""
    workspace = workspace_from(config, None, store, None)
    chosen = [e.strip() for e in engines.split(",") if e.strip()] if engines else None
    typer.echo(export_snapshot(workspace, path, run_id, case_id, chosen).line())

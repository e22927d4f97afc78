"""Commands about the data itself: sampling queries from a search log."""

from pathlib import Path
from typing import Annotated, Literal

import typer

from rae.cli.options import ConfigOption
from rae.config import load_settings
from rae.datasets.bundled import ESCI_QUERY_LOG
from rae.datasets.query_sets import write_srw_query_set
from rae.datasets.readers import LogFormat
from rae.datasets.searchlog import read_search_log, sample_queries


def queries_sample(
    size: Annotated[int, typer.Option("--size", help="how many queries")] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out", help="where to write the sample (JSON)")] = Path("queries.json"),
    log: Annotated[Path | None, typer.Option("--log", help="search log (UBI, CSV, JSONL, Parquet); default the bundled UBI log")] = None,
    query_column: Annotated[str, typer.Option("--query-column")] = "user_query",
    count_column: Annotated[str | None, typer.Option("--count-column", help="a column of search counts, if the log has one")] = None,
    log_format: Annotated[LogFormat | None, typer.Option("--log-format", help="csv, tsv, jsonl or parquet, when the file's name and first line do not say")] = None,
    head: Annotated[int | None, typer.Option("--head", help="queries from the head (default a third of --size)")] = None,
    torso: Annotated[int | None, typer.Option("--torso")] = None,
    tail: Annotated[int | None, typer.Option("--tail")] = None,
    out_format: Annotated[Literal["rae", "srw"], typer.Option("--format", help="rae (JSON, with strata) or srw (SRW's query set NDJSON)")] = "rae",
    config: ConfigOption = None,
) -> None:
    """Sample queries from a search log, stratified by frequency (head, torso, tail), with a seed."""
    path = log or Path(load_settings(config).search_log or ESCI_QUERY_LOG)
    strata = None
    if head is not None or torso is not None or tail is not None:
        strata = {"head": head or 0, "torso": torso or 0, "tail": tail or 0}
    sample = sample_queries(read_search_log(path, query_column, count_column, log_format), size, seed, strata, log=str(path))
    if out_format == "srw":
        write_srw_query_set(out, sample.queries)
    else:
        sample.save(out)
    typer.echo(f"wrote {sample.size} queries to {out} ({sample.describe()})")

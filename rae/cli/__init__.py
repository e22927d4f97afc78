"""The ``rae`` command line. Each command is a thin layer: read settings, build the workspace, call one step, print
the result (its Markdown, or ``--json``). The commands live by theme in this package's modules."""

import inspect
import logging
import sys
from collections.abc import Callable

import typer

from rae.cli import batches, data, evaluation, fitting, improving, interop, judging, review, store, studies
from rae.errors import RaeError
from rae.secrets import redact, redacting_log_handler


def help_text(command: Callable) -> str:
    """The command's docstring as its help, each paragraph on one line: Typer's rich help keeps a docstring's single
    line breaks, which then break sentences in the middle wherever the terminal is wider than the source."""
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def add(group: typer.Typer, command: Callable, name: str | None = None) -> None:
    group.command(name, help=help_text(command))(command)


app = typer.Typer(
    help="rae: LLM relevance judgments for e-commerce search, fitted to your human labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for command in (judging.annotate, judging.agreement, evaluation.evaluate, evaluation.report, evaluation.plan, fitting.optimize,
                fitting.tune, improving.gate, studies.ablate, studies.injection, studies.errors, studies.audit):
    add(app, command)
add(app, evaluation.engines_list, "engines")
add(app, studies.ppi_check, "ppi-check")
add(app, improving.tune_engine, "tune-engine")

queries_app = typer.Typer(help="Queries from a search log.", no_args_is_help=True)
add(queries_app, data.queries_sample, "sample")
app.add_typer(queries_app, name="queries")

programs_app = typer.Typer(help="Compiled programs (versioned artifacts).", no_args_is_help=True)
add(programs_app, fitting.programs_list, "list")
app.add_typer(programs_app, name="programs")

judgments_app = typer.Typer(help="Judgment lists in and out: TREC, Quepid, OpenSearch SRW, CSV, JSON Lines.", no_args_is_help=True)
add(judgments_app, interop.judgments_import, "import")
add(judgments_app, interop.judgments_export, "export")
add(judgments_app, interop.judgments_from_clicks, "from-clicks")
app.add_typer(judgments_app, name="judgments")

lists_app = typer.Typer(help="An evaluation's result lists in other tools' formats.", no_args_is_help=True)
add(lists_app, interop.lists_export, "export")
app.add_typer(lists_app, name="lists")

batches_app = typer.Typer(help="Batches sent to a batch API or written to a file: `rae batches` lists them.")
batches_app.callback(invoke_without_command=True)(batches.batches_default)
add(batches_app, batches.batches_list, "list")
add(batches_app, batches.batches_import, "import")
app.add_typer(batches_app, name="batches")

store_app = typer.Typer(help="The store itself.", no_args_is_help=True)
add(store_app, store.store_migrate, "migrate")
app.add_typer(store_app, name="store")

review_app = typer.Typer(help="Humans review the hard cases; their labels flow back.", no_args_is_help=True)
add(review_app, review.queue, "queue")
add(review_app, review.serve, "serve")
app.add_typer(review_app, name="review")


def main() -> None:
    """The console script: a user-facing error is one line on stderr and exit status 1, never a traceback.
    Everything logged or printed as an error goes through the secret redaction first."""
    logging.basicConfig(level=logging.WARNING, handlers=[redacting_log_handler()], force=True)
    try:
        app()
    except RaeError as exc:
        print(f"rae: error: {redact(str(exc))}", file=sys.stderr)
        sys.exit(1)

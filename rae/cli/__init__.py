"""The ``rae`` command line. Each command is a thin layer: read settings, build the workspace, call one step, print
the result (its Markdown, or ``--json``). The commands live by theme in this package's modules."""

import logging
import sys

import typer

from rae.cli import batches, data, evaluation, fitting, improving, interop, judging, review, store, studies
from rae.errors import RaeError
from rae.secrets import redact, redacting_log_handler

app = typer.Typer(
    help="rae: LLM relevance judgments for e-commerce search, fitted to your human labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for command in (judging.annotate, judging.agreement, evaluation.evaluate, evaluation.report, evaluation.plan, fitting.optimize,
                fitting.tune, improving.gate, studies.ablate, studies.injection, studies.errors, studies.audit):
    app.command()(command)
app.command("engines")(evaluation.engines_list)
app.command("ppi-check")(studies.ppi_check)
app.command("tune-engine")(improving.tune_engine)

queries_app = typer.Typer(help="Queries from a search log.", no_args_is_help=True)
queries_app.command("sample")(data.queries_sample)
app.add_typer(queries_app, name="queries")

programs_app = typer.Typer(help="Compiled programs (versioned artifacts).", no_args_is_help=True)
programs_app.command("list")(fitting.programs_list)
app.add_typer(programs_app, name="programs")

judgments_app = typer.Typer(help="Judgment lists in and out: TREC, Quepid, OpenSearch SRW, CSV, JSON Lines.", no_args_is_help=True)
judgments_app.command("import")(interop.judgments_import)
judgments_app.command("export")(interop.judgments_export)
judgments_app.command("from-clicks")(interop.judgments_from_clicks)
app.add_typer(judgments_app, name="judgments")

lists_app = typer.Typer(help="An evaluation's result lists in other tools' formats.", no_args_is_help=True)
lists_app.command("export")(interop.lists_export)
app.add_typer(lists_app, name="lists")

batches_app = typer.Typer(help="Batches sent to a batch API or written to a file: `rae batches` lists them.")
batches_app.callback(invoke_without_command=True)(batches.batches_default)
batches_app.command("list")(batches.batches_list)
batches_app.command("import")(batches.batches_import)
app.add_typer(batches_app, name="batches")

store_app = typer.Typer(help="The store itself.", no_args_is_help=True)
store_app.command("migrate")(store.store_migrate)
app.add_typer(store_app, name="store")

review_app = typer.Typer(help="Humans review the hard cases; their labels flow back.", no_args_is_help=True)
review_app.command("queue")(review.queue)
review_app.command("serve")(review.serve)
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

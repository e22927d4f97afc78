"""What every command shares: its common options, the workspace they build, and how a result is printed."""

from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from rae.config import GuidelineMode, JudgeMode, Settings, load_settings
from rae.jsonout import dumps
from rae.scaleout.runner import Placement
from rae.tracking import log_run
from rae.workspace import Workspace

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default: ./rae.toml if present)")]
ModelOption = Annotated[str | None, typer.Option("--model", help="LiteLLM model string, or local/smollm2 (the embedded default)")]
StoreOption = Annotated[str | None, typer.Option("--store", help="database URL (default sqlite:///.rae/rae.db)")]
JudgeModeOption = Annotated[
    JudgeMode | None, typer.Option("--judge-mode", help="the judge reads the text; text and a visual description; or text and the image")
]
GuidelinesOption = Annotated[GuidelineMode | None, typer.Option("--guidelines", help="query-specific guidelines, or the generic rubric")]
ProgramOption = Annotated[
    str | None, typer.Option("--program", help="compiled program to use (see `rae programs list`), or 'uncompiled'; default the newest for the model")
]
SplitOption = Annotated[str, typer.Option("--split", help="train, dev, test or all")]
QueriesOption = Annotated[int | None, typer.Option("--queries", help="only the first N queries of the split")]
PerQueryOption = Annotated[int | None, typer.Option("--per-query", help="at most N pairs per query (a fixed sample)")]
WorkersOption = Annotated[int | None, typer.Option("--workers", help="concurrent LM calls")]
ProcessesOption = Annotated[int | None, typer.Option("--processes", help="processes on this machine, the work split by query")]
RayOption = Annotated[str | None, typer.Option("--ray", help="run on a Ray cluster: auto (the one running here), an address, or local")]
BatchOption = Annotated[bool, typer.Option("--batch", help="send the calls as batches to the model's batch API (half the price); resumable")]
BatchFileOption = Annotated[Path | None, typer.Option("--batch-file", help="write this round's requests to a JSON Lines file instead (vLLM run_batch reads it)")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="estimate LM calls, tokens and cost from the store; call nothing")]
BudgetOption = Annotated[float | None, typer.Option("--budget", help="stop before spending more than this many US dollars")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of Markdown tables")]
MlflowOption = Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="log the run to MLflow")]
JudgesOption = Annotated[str | None, typer.Option("--judges", help="a panel of LLM judges named under [judges.<name>] in the config, comma-separated")]


def judge_names(judges: str) -> list[str]:
    """``--judges a, b`` as names."""
    return [name.strip() for name in judges.split(",") if name.strip()]


class Result(Protocol):
    def as_dict(self) -> dict[str, Any]: ...

    def markdown(self) -> str: ...


def workspace_from(
    config: Path | None, model: str | None, store: str | None, guidelines: str | None, quiet: bool = False, **more: object
) -> Workspace:
    """The workspace of the settings file, with the command line's choices on top (None: not given). Said at once, on
    stderr: a judge mode asked for that cannot be used, and a store whose older answers are not carried over yet."""
    settings: Settings = load_settings(config).with_overrides(model_name=model, store=store, guidelines=guidelines, **more)
    workspace = Workspace(settings)
    if workspace.judge_mode.note:
        typer.echo(f"rae: note: {workspace.judge_mode.note}", err=True)
    if not quiet and not workspace.store.migrated:
        typer.echo("rae: note: this store holds answers an older rae keyed another way: `rae store migrate` carries them over", err=True)
    return workspace


def placement(workspace: Workspace, processes: int | None, ray: str | None, batch: bool = False, batch_file: Path | None = None) -> Placement:
    """Where to run: the command line's choice, else the settings'."""
    return Placement(processes or workspace.settings.processes, ray or workspace.settings.ray.address, batch, batch_file)


def show(result: Result, as_json: bool, header: str = "", **extra: Any) -> None:
    """A result as JSON (with ``extra`` keys), or as its Markdown under an optional header."""
    if as_json:
        typer.echo(dumps({**result.as_dict(), **extra}))
    else:
        typer.echo(f"{header}\n\n{result.markdown()}" if header else result.markdown())


def track(workspace: Workspace, enabled: bool, kind: str, name: str, fields: tuple[dict[str, Any], dict], artifacts: Path | None = None) -> str | None:
    """Log a run to MLflow when asked and configured; MLflow's run id, or None."""
    if not enabled or not workspace.settings.tracking_uri:
        return None
    params, metrics = fields
    return log_run(workspace.settings.tracking_uri, kind, name, params, metrics, artifacts)

"""Commands about the store itself: carry the answers an older rae stored over to this one's keys."""

from typing import Annotated

import typer

from rae.annotate.migration import KnownProgram, migrate
from rae.cli.options import ConfigOption, JsonOption, StoreOption, workspace_from
from rae.jsonout import dumps
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.programs.artifacts import list_artifacts, load_artifact
from rae.store.store import SCHEMA_VERSION
from rae.workspace import Workspace


def store_migrate(
    as_json: JsonOption = False,
    config: ConfigOption = None,
    store: StoreOption = None,
    dry: Annotated[bool, typer.Option("--check", help="only say whether the store needs it")] = False,
) -> None:
    """Key the answers an older rae stored on what made them, so they are served as before. Safe to rerun."""
    workspace = workspace_from(config, None, store, None, quiet=True)
    if dry:
        typer.echo(f"the store is up to date (schema {SCHEMA_VERSION})" if workspace.store.migrated else "the store holds answers of an older rae: run `rae store migrate`")
        return
    done = migrate(workspace.store, models_of(workspace), programs_of(workspace), workspace.labelled.catalog)
    typer.echo(dumps(done.as_dict()) if as_json else done.line())


def models_of(workspace: Workspace) -> list[ModelHandle]:
    """Every model the settings name (the judge, the panel's judges, the describer), with and without the embedded
    model's scoring of its choices (which an older rae did not name in a model's identity)."""
    settings = workspace.settings
    specs = [settings.model, *settings.judges.values(), *([settings.describer] if settings.describer else [])]
    return [ModelHandle(spec, settings.prices.get(spec.name), score_choices=scores) for spec in specs for scores in (False, True)]


def programs_of(workspace: Workspace) -> list[KnownProgram]:
    """The plain program in each of its settings, and every artifact in the programs directory."""
    settings = workspace.settings
    plain = [KnownProgram(Annotator(mode, cot), settings.product_text) for mode in ("query", "generic") for cot in (True, False)]
    artifacts = []
    for manifest in list_artifacts(workspace.program_dirs):
        program, _ = load_artifact(manifest.artifact_id, workspace.program_dirs)
        artifacts.append(KnownProgram(program, manifest.product_text_spec()))
    return [*artifacts, *plain]

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import ConfigError, load_settings


def test_defaults_then_file_then_environment(tmp_path: Path):
    assert load_settings(tmp_path / "absent.toml" if False else None, environ={}).model.name == "local/smollm2"
    config = tmp_path / "rae.toml"
    config.write_text('workers = 16\n[model]\nname = "openai/gpt-4o-mini"\n[product_text]\nbudget = 500\n')
    settings = load_settings(config, environ={})
    assert (settings.workers, settings.model.name, settings.product_text.budget) == (16, "openai/gpt-4o-mini", 500)
    settings = load_settings(config, environ={"RAE_MODEL": "openai/gpt-4.1", "RAE_STORE": "sqlite:///x.db"})
    assert (settings.model.name, settings.store) == ("openai/gpt-4.1", "sqlite:///x.db")
    assert settings.with_overrides(model_name="local/smollm2", workers=None).model.name == "local/smollm2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workers = 0", "workers: Input should be greater than or equal to 1"),
        ("[model]\nnmae = 'x'", "model.nmae: Extra inputs are not permitted"),
        ("workers = [", "not valid TOML"),
        ("guidelines = 'clever'", "guidelines: Input should be 'query' or 'generic'"),
    ],
)
def test_a_bad_config_file_is_one_clear_error(tmp_path: Path, text: str, message: str):
    config = tmp_path / "rae.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_a_named_config_file_must_exist(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_the_cli_reports_user_errors_in_one_line(tmp_path: Path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "rae", "agreement", "--split", "validation", "--store", f"sqlite:///{tmp_path}/s.db"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "rae: error: unknown split 'validation' (expected one of train, dev, test or all)"


def test_the_cli_lists_its_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "annotate" in result.output and "agreement" in result.output


def test_every_commands_help_keeps_its_sentences_whole():
    """Typer's rich help keeps a docstring's line breaks; each command's help is its docstring with a paragraph a line,
    so a sentence is never broken where the source wrapped it."""
    import typer.main

    def commands(group, path=()):
        for name, sub in getattr(group, "commands", {}).items():
            yield from commands(sub, (*path, name)) if hasattr(sub, "commands") else [((*path, name), sub)]

    found = list(commands(typer.main.get_command(app)))
    assert len(found) > 20
    for path, command in found:
        assert command.help and all("\n" not in paragraph for paragraph in command.help.split("\n\n")), path
    plan = CliRunner().invoke(app, ["plan", "--help"], terminal_width=200).output
    assert "that precisely, with the judge's help" in plan

"""A planted API key is used, and never lands in the store, the logs, the reports, the artifacts or MLflow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fake_server import FakeServer, Fault

KEY = "sk-rae-planted-4f9a8b7c6d5e4f3a2b1c0d9e"


def rae(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAE_PLANTED_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "rae", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def project(tmp_path: Path, server: FakeServer) -> Path:
    (tmp_path / "rae.toml").write_text(
        'programs_dir = "programs"\nworkers = 4\n'
        f'[model]\nname = "openai/secret-model"\napi_base = "{server.url}"\napi_key_env = "RAE_PLANTED_KEY"\nnum_retries = 1\n'
    )
    return tmp_path


def everything_written(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def test_a_planted_key_is_used_but_never_written(tmp_path: Path):
    def careless(number, body):
        user = body["messages"][-1]["content"]
        if "Tank" in user and "[[ ## product ## ]]" in user:  # garbage that quotes the key back
            return Fault(garbage=f"my instructions came with Authorization: Bearer {KEY}")
        return None

    outputs = []
    with FakeServer(faults=careless) as server:
        cwd = project(tmp_path, server)
        slice_ = ["--split", "dev", "--queries", "2", "--per-query", "4"]
        for args in (
            ["annotate", *slice_],
            ["agreement", *slice_, "--json"],
            ["evaluate", "--engines", "bm25-title,bm25-full", "--queries", "2", "--split", "dev", "--k", "3"],
            ["optimize", "--optimizer", "labeled", "--train-queries", "2", "--dev-queries", "2", "--test-queries", "1", "--per-query", "3"],
            ["ablate", "--split", "test", "--queries", "1", "--per-query", "3", "--variants", "query-guidelines,generic-guidelines"],
        ):
            result = rae(*args, cwd=cwd)
            assert result.returncode == 0, (args, result.stderr)
            outputs += [result.stdout, result.stderr]
        assert set(server.recorded.authorizations) == {f"Bearer {KEY}"}  # the key was sent, every time
    with FakeServer(faults=lambda n, body: Fault(status=401, echo_credentials=True)) as hostile:
        refused = rae("annotate", "--split", "dev", "--queries", "1", "--per-query", "2", cwd=project(tmp_path, hostile))
        assert refused.returncode == 1 and "LMAuthError" in refused.stderr and "[redacted]" in refused.stderr
        outputs += [refused.stdout, refused.stderr]

    written = everything_written(tmp_path)
    assert any(p.suffix == ".db" for p in written) and any("mlruns" in p.parts for p in written)
    assert any("reports" in p.parts for p in written) and any("programs" in p.parts for p in written)
    leaks = [str(p.relative_to(tmp_path)) for p in written if KEY.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(outputs) if KEY in text]
    assert leaks == []


@pytest.mark.parametrize("text", [f"HTTP 401: Authorization: Bearer {KEY}", f'{{"api_key": "{KEY}"}}', f"key={KEY}"])
def test_redaction_catches_the_key_in_the_shapes_errors_quote_it(text, monkeypatch):
    from rae.secrets import redact

    monkeypatch.setenv("RAE_PLANTED_KEY", KEY)
    assert KEY not in redact(text) and "[redacted]" in redact(text)
    monkeypatch.delenv("RAE_PLANTED_KEY")
    assert KEY not in redact(text)  # by its shape alone


def test_the_settings_rae_logs_hold_the_name_of_the_key_not_the_key(tmp_path: Path, monkeypatch):
    from rae.config import load_settings

    monkeypatch.setenv("RAE_PLANTED_KEY", KEY)
    (tmp_path / "rae.toml").write_text('[model]\nname = "openai/x"\napi_key_env = "RAE_PLANTED_KEY"\n')
    dumped = json.dumps(load_settings(tmp_path / "rae.toml").model_dump())
    assert "RAE_PLANTED_KEY" in dumped and KEY not in dumped


def test_a_key_set_changed_or_removed_later_is_redacted_as_it_now_stands(monkeypatch):
    """The secret values are worked out again whenever the environment changed (and only then)."""
    from rae.secrets import redact, secret_values

    monkeypatch.setenv("RAE_FIRST_TOKEN", "first-plain-value")
    assert redact("a first-plain-value b") == "a [redacted] b"
    monkeypatch.setenv("RAE_FIRST_TOKEN", "second-plain-value")
    assert redact("first-plain-value, second-plain-value") == "first-plain-value, [redacted]"
    monkeypatch.setenv("RAE_ANOTHER_PASSWORD", "another-plain-value")
    assert {"second-plain-value", "another-plain-value"} <= set(secret_values())
    monkeypatch.delenv("RAE_FIRST_TOKEN")
    assert "second-plain-value" not in secret_values() and redact("second-plain-value") == "second-plain-value"

"""The embedded model's native code: built for a portable baseline, loaded without extra buffer types, and a crash
in it reported in one line with what to do."""

import re
import sys
from pathlib import Path

import pytest

from rae.cli import main
from rae.lm import native
from rae.lm.embedded import LlamaCppEngine, default_threads, smollm2_path
from rae.lm.native import NativeCrash, ProbeSettings, build_features, ensure_runs_here, portability_problem

ROOT = Path(__file__).resolve().parents[1]
# What llama-cpp-python's own native build printed on a Sapphire Rapids Xeon (the build that segfaulted there).
NATIVE_ON_AMX = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
    "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
)
SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


def test_the_installed_llama_cpp_is_built_for_the_portable_baseline():
    """Fails on a native build on any machine with more than the baseline (AVX-512, AVX-VNNI, AMX), not only on an
    AMX one."""
    features = build_features()
    assert portability_problem(features) is None, native.system_info()
    if native.platform.machine() == "x86_64":
        assert features >= native.BASELINE


def test_a_native_build_is_told_apart_from_a_portable_one():
    assert build_features(NATIVE_ON_AMX) >= {"AVX2", "AVX512", "AMX_INT8"}
    assert portability_problem(build_features(NATIVE_ON_AMX), "x86_64") == (
        "built for its host: AMX_INT8, AVX512, AVX512_BF16, AVX512_VBMI, AVX512_VNNI, AVX_VNNI"
    )
    portable = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |"
    assert portability_problem(build_features(portable), "x86_64") is None
    assert portability_problem(build_features("CPU : SSE3 = 1 | AVX = 1 |"), "x86_64").startswith("below the x86-64 baseline")


def test_the_makefile_and_the_docs_build_llama_cpp_with_the_portable_arguments():
    makefile = (ROOT / "Makefile").read_text()
    assert f"LLAMA_CMAKE_ARGS := {native.PORTABLE_CMAKE_ARGS}\n" in makefile
    assert "--no-cache-dir" in makefile and "CMAKE_BUILD_PARALLEL_LEVEL" in makefile
    docs = (ROOT / "docs" / "embedded-model.md").read_text()
    assert f'CMAKE_ARGS="{native.PORTABLE_CMAKE_ARGS}"' in docs
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r"^LLAMA_CPP := (.+)$", makefile, re.M)[1]
    assert f'"{pinned}"' in pyproject  # the Makefile builds the version the project asks for


def test_a_crash_in_native_code_is_one_line_that_says_what_died_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "probe_command", lambda model_path, settings: SEGFAULT)
    with pytest.raises(NativeCrash) as raised:
        ensure_runs_here(smollm2_path(), ProbeSettings(threads=1, extra_buffer_types=False))
    message = str(raised.value)
    assert "\n" not in message
    assert "llama.cpp" in message and "SIGSEGV" in message and "make rebuild-llama" in message and "--model" in message
    assert not list(tmp_path.rglob("*.ok"))  # a crash is not remembered as a success


def test_a_probe_that_worked_is_not_run_again_until_something_it_depends_on_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ran = tmp_path / "ran"
    monkeypatch.setattr(native, "probe_command", lambda model_path, settings: [sys.executable, "-c", f"open({str(ran)!r}, 'a').write('x')"])
    settings = ProbeSettings(threads=1, extra_buffer_types=False)
    ensure_runs_here(smollm2_path(), settings)
    ensure_runs_here(smollm2_path(), settings)
    assert ran.read_text() == "x"
    ensure_runs_here(smollm2_path(), ProbeSettings(threads=2, extra_buffer_types=False))
    assert ran.read_text() == "xx"


def test_the_command_line_reports_a_native_crash_in_one_line(tmp_path, monkeypatch, capsys):
    """``rae annotate`` on a machine where the embedded model's native code dies: one line on stderr, exit 1."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "probe_command", lambda model_path, settings: SEGFAULT)
    monkeypatch.setattr(sys, "argv", ["rae", "annotate", "--split", "dev", "--queries", "1", "--per-query", "1"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("rae: error: ")
    assert "SIGSEGV" in error and "make rebuild-llama" in error


def test_the_thread_count_leaves_room_for_another_process():
    assert default_threads(1) == 1
    assert default_threads(2) == 1
    assert default_threads(8) == 4


@pytest.mark.embedded
def test_the_model_loads_without_extra_buffer_types_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    engine = LlamaCppEngine(smollm2_path(), n_ctx=256, n_threads=1)
    try:
        assert engine.model().model_params.use_extra_bufts is False
    finally:
        engine.close()
    asked = LlamaCppEngine(smollm2_path(), n_ctx=256, n_threads=1, extra_buffer_types=True)
    try:
        assert asked.model().model_params.use_extra_bufts is True
    finally:
        asked.close()

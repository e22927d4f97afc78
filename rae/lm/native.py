"""The embedded model's native code (llama.cpp): what it was built for, and whether it runs on this machine.

pip builds llama-cpp-python from source, and llama.cpp's default build is ``-march=native``: made for the CPU that
built it. On an Intel Xeon with AMX such a build repacks the weights for AMX at load and crashes at the first decode
(ggml-org/llama.cpp#20824); on another machine (a Ray node, a container built on a newer CPU) it can die of an
illegal instruction. rae's install builds it for a fixed baseline instead (``PORTABLE_CMAKE_ARGS``: x86-64-v3, no
AVX-512, no AMX), and ``build_features`` reads back what the library was compiled with, so a test and
``python -m rae.lm.native check`` can tell a portable build from a native one.

A crash in native code kills the process with a signal and no Python error. So before the first model of a process
is loaded, ``ensure_runs_here`` loads it in a child process and decodes a few tokens there: if the child dies, the
user gets one line saying what died and what to do, instead of a bare ``Segmentation fault``. The answer is
remembered per build, model file, CPU and settings (a file under ``~/.cache/rae``), so only the first run on a
machine pays for the probe.
"""

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rae.errors import RaeError
from rae.lm.llama_loader import load_llama

# The x86-64 baseline the install builds llama.cpp for (x86-64-v3: every x86-64 server CPU since about 2015), with
# everything a build could take from its host switched off. The Makefile passes these as CMAKE_ARGS; a test holds the
# Makefile and docs/embedded-model.md to them.
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
    "-DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
)
BASELINE = frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"})
# Instruction sets a portable build never has: a build that shows one was made for (and may only run on) its host.
HOST_ONLY_PREFIXES = ("AVX512", "AVX_VNNI", "AMX", "AVX_VNNI_INT8", "SVE", "SME")
REBUILD = "make rebuild-llama"
PROBE_TIMEOUT_S = 180.0
PROBE_PROMPT = "The capital of France is"


class NativeCrash(RaeError, RuntimeError):
    """The embedded model's native code crashed (or hung) on this machine."""


@dataclass(frozen=True)
class ProbeSettings:
    """What the probe loads the model with: the engine's own settings, since they decide the code path taken."""

    threads: int
    extra_buffer_types: bool


def system_info() -> str:
    """llama.cpp's own account of what the loaded library was compiled with (and can use here)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode(errors="replace")


def build_features(info: str | None = None) -> set[str]:
    """The CPU features a build reports as on (``AVX2 = 1``), e.g. {"AVX", "AVX2", "FMA", ...}."""
    features = set()
    for part in (info if info is not None else system_info()).replace("\n", "|").split("|"):
        name, _, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        if name and value.strip() == "1":
            features.add(name)
    return features


def host_only(features: set[str]) -> set[str]:
    """The features of a build that a portable build never has."""
    return {f for f in features if f.startswith(HOST_ONLY_PREFIXES)}


def portability_problem(features: set[str], machine: str | None = None) -> str | None:
    """Why a build is not the portable baseline (None: it is). The x86-64 baseline is checked on x86-64 only; on any
    architecture, a host-only feature is a problem."""
    extra = host_only(features)
    if extra:
        return "built for its host: " + ", ".join(sorted(extra))
    if (machine or platform.machine()) in ("x86_64", "AMD64") and not features >= BASELINE:
        return "below the x86-64 baseline: missing " + ", ".join(sorted(BASELINE - features))
    return None


def probe_command(model_path: Path, settings: ProbeSettings) -> list[str]:
    """The child process that loads the model and decodes a few tokens (``python -m rae.lm.native probe``)."""
    argv = [sys.executable, "-m", "rae.lm.native", "probe", str(model_path), "--threads", str(settings.threads)]
    return [*argv, "--extra-buffer-types"] if settings.extra_buffer_types else argv


def ensure_runs_here(model_path: Path, settings: ProbeSettings) -> None:
    """Load the model in a child process and decode a few tokens, unless that already worked with this build, model
    file, CPU and settings. Raises ``NativeCrash`` (one line) when the child dies or hangs."""
    marker = _marker(model_path, settings)
    if marker is not None and marker.exists():
        return
    try:
        done = subprocess.run(probe_command(model_path, settings), capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise NativeCrash(
            f"the embedded model's native code (llama.cpp) did not answer a 5-token prompt in {PROBE_TIMEOUT_S:.0f} s on this "
            f"machine: rebuild it with `{REBUILD}`, or judge with a server model (--model)"
        ) from None
    if done.returncode < 0:
        raise NativeCrash(
            f"the embedded model's native code (llama.cpp) crashed with {_signal_name(-done.returncode)} on this CPU "
            f"({_cpu_summary()}; built for {_build_summary()}): rebuild it for a portable baseline with `{REBUILD}` "
            "(docs/embedded-model.md), or judge with a server model (--model)"
        )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1][:300]
        raise NativeCrash(f"the embedded model could not be loaded on this machine: {last}")
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(done.stdout)


def _marker(model_path: Path, settings: ProbeSettings) -> Path | None:
    """Where a successful probe is remembered: named by everything that decides whether it would crash again."""
    try:
        import llama_cpp

        library = Path(llama_cpp.__file__).parent / "lib"
        builds = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in library.glob("*.so*") if p.is_file())
        model = model_path.stat()
    except (ImportError, OSError):
        return None
    key = json.dumps([builds, str(model_path), model.st_size, model.st_mtime_ns, _cpu_flags(), settings.threads, settings.extra_buffer_types])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rae" / "native-probe"
    return cache / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".ok")


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_summary() -> str:
    flags = set(_cpu_flags().split())
    shown = sorted(f for f in flags if f.startswith(("amx", "avx512f", "avx2")))
    return "CPU flags " + (" ".join(shown) if shown else "unknown")


def _build_summary() -> str:
    try:
        features = build_features()
    except Exception:  # the library itself may be what fails to load
        return "an unknown baseline"
    extra = sorted(host_only(features))
    return "its build host (" + ", ".join(extra) + ")" if extra else "the portable baseline"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _probe(model_path: str, threads: int, extra_buffer_types: bool) -> None:
    """In the child: load the model as the engine does and decode a few tokens."""
    model = load_llama(Path(model_path), n_ctx=256, seed=0, n_threads=threads, extra_buffer_types=extra_buffer_types)
    output = model.create_completion(PROBE_PROMPT, max_tokens=5, temperature=0.0)
    print(json.dumps({"text": output["choices"][0]["text"], "build": sorted(build_features())}))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rae.lm.native", description="llama.cpp as built here: check it, or probe a model")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="print what llama.cpp was built for; exit 1 if it was built for its host only")
    probe = commands.add_parser("probe", help="load a GGUF model and decode a few tokens (what ensure_runs_here runs)")
    probe.add_argument("model")
    probe.add_argument("--threads", type=int, default=1)
    probe.add_argument("--extra-buffer-types", action="store_true")
    args = parser.parse_args()
    if args.command == "probe":
        _probe(args.model, args.threads, args.extra_buffer_types)
        return
    features = build_features()
    print("llama.cpp built for: " + " ".join(sorted(features)))
    problem = portability_problem(features)
    if problem is not None:
        print(f"{problem}: rebuild with `{REBUILD}`")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""``make bench``: rae's throughput, CPU, cache and store numbers, as one JSON on stdout.

Run from a checkout (the benchmark is not installed with rae): ``python -m bench``. The model server is
``bench.fake_server`` in its own process (so its CPU is not counted as rae's), answering
after a fixed latency. The 20,000-pair run happens in a child process of its own, so that its peak memory is that
run's alone. ``--quick`` runs every measurement small, to check that the benchmark works (the test suite does).
"""

import argparse
import json
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.scaleout import processes_throughput, ray_throughput
from bench.time_shares import time_shares
from bench.workloads import (
    Server,
    annotation_throughput,
    embedded_prefix_ordering,
    naive_run,
    peak_memory_mib,
    second_engine_cost,
    store_lookups,
    temporary_directory,
)

FULL = {
    "throughput": ((1, 50), (8, 400), (32, 1600), (64, 3200), (256, 6400)),
    "naive": 2000, "twenty_k": 20_000, "store_rows": 1_000_000, "scaleout": (64, 6400), "shares": (64, 3200),
}
QUICK = {
    "throughput": ((1, 5), (8, 16)), "naive": 20, "twenty_k": 200, "store_rows": 20_000, "scaleout": (4, 40),
    "shares": (4, 16),
}
CPU_PER_PAIR_TARGET_MS = 2.0  # rae's CPU a pair at 64 in flight, through DSPy's public route


@contextmanager
def server_process(latency_s: float) -> Iterator[tuple[Server, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_server", "--latency", str(latency_s)], stdout=subprocess.PIPE, text=True
    )
    try:
        yield Server(process.stdout.readline().strip(), latency_s), process.pid
    finally:
        process.terminate()
        process.wait(10)


def one_run(url: str, latency_s: float, workers: int, pairs: int) -> None:
    """The child process of the large run: one annotation run, then its own peak memory."""
    with temporary_directory() as directory:
        result = annotation_throughput(Server(url, latency_s), workers, pairs, Path(directory), guidelines="query")
    print(json.dumps({**result, "peak_memory_mib": peak_memory_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check that the benchmark works")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--one-run", nargs=4, metavar=("URL", "LATENCY", "WORKERS", "PAIRS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        url, latency, workers, pairs = args.one_run
        one_run(url, float(latency), int(workers), int(pairs))
        return
    sizes = QUICK if args.quick else FULL
    report: dict = {"machine": {
        "cpus": _cpus(), "cpu": _cpu_model(), "python": platform.python_version(), "platform": platform.platform(),
    }}
    with temporary_directory() as tmp:
        directory = Path(tmp)
        with server_process(0.2) as (server, server_pid):
            report["throughput_200ms"] = [annotation_throughput(server, w, n, directory) for w, n in sizes["throughput"]]
            report["time_shares_200ms"] = time_shares(server, *sizes["shares"], directory)
            workers, pairs = sizes["scaleout"]
            report["scaleout_200ms"] = {
                "one_process": processes_throughput(server, server_pid, 1, workers, pairs, directory),
                "two_processes": processes_throughput(server, server_pid, 2, workers, pairs, directory),
            }
            naive = naive_run(server, sizes["naive"])
            rae = annotation_throughput(server, 64, sizes["naive"], directory)
            report["naive_vs_rae"] = {"naive": naive, "rae_64_workers": rae, "speedup": round(naive["seconds"] / rae["seconds"], 1)}
            report["cache"] = second_engine_cost(server, directory, n_pairs=sizes["naive"] // 2)
        report["scaleout_200ms"]["ray_two_nodes"] = ray_throughput(workers, pairs, directory)
        with server_process(1.0) as (slow, _):
            child = subprocess.run(
                [sys.executable, "-m", "bench", "--one-run", slow.url, "1.0", "64", str(sizes["twenty_k"])],
                capture_output=True, text=True, check=True,
            )
            report["large_run_1s"] = json.loads(child.stdout.strip().splitlines()[-1])
        if not args.skip_embedded:
            report["embedded"] = embedded_prefix_ordering(directory, *((2, 3) if args.quick else (3, 8)))
        report["store"] = store_lookups(directory, rows=sizes["store_rows"])
    report["targets"] = _targets(report)
    print(json.dumps(report, indent=2))


def _targets(report: dict) -> dict:
    at_64 = next((r for r in report["throughput_200ms"] if r["workers"] == 64), None)
    at_256 = next((r for r in report["throughput_200ms"] if r["workers"] == 256), None)
    large = report["large_run_1s"]
    return {
        "twenty_thousand_pairs_at_1s_under_6_minutes": large["pairs"] == 20_000 and large["seconds"] < 360 if large["pairs"] == 20_000 else None,
        "framework_cpu_at_most_2_0_ms_per_pair": None if at_64 is None else at_64["framework_cpu_ms_per_pair"] <= CPU_PER_PAIR_TARGET_MS,
        "throughput_64_workers_at_least_0_9_of_ideal": None if at_64 is None else at_64["share_of_ideal"] >= 0.9,
        "one_process_at_256_in_flight_at_least_500_pairs_per_s": None if at_256 is None else at_256["pairs_per_s"] >= 500,
        "two_processes_at_least_1_7x_one": _ratio(report["scaleout_200ms"]) >= 1.7,
        "peak_memory_under_1_gib": large["peak_memory_mib"] < 1024,
        "second_engine_paid_only_new_pairs": report["cache"]["second_engine_paid_exactly_its_new_pairs"],
    }


def _ratio(scaleout: dict) -> float:
    return scaleout["two_processes"]["pairs_per_s"] / scaleout["one_process"]["pairs_per_s"]


def _cpu_model() -> str:
    """The CPU's name and whether it has AMX or AVX-512, since a figure from one CPU may not hold on another."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    extras = [label for label, flag in (("AMX", "amx_tile"), ("AVX-512", "avx512f")) if flag in flags]
    return f"{name} ({', '.join(extras)})" if extras else name


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()

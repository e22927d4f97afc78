"""The benchmark's scale-out rows: one process against two, and a two-node Ray cluster, at 64 workers each, against
the fake model server at 200 ms; each as a share of its ideal (workers x processes / latency), with rae's CPU per pair
(its own and its children's) and the fake server's CPU beside it, since the server shares the machine's cores."""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.workloads import Server, bench_pairs, fresh_store, pace
from rae.config import ModelSpec, Settings
from rae.scaleout.processes import run_in_processes


def processes_throughput(server: Server, server_pid: int, processes: int, workers: int, n_pairs: int, directory: Path) -> dict[str, Any]:
    pairs, _ = bench_pairs(n_pairs)
    store = fresh_store(directory)
    settings = Settings(model=ModelSpec(name="openai/bench", api_base=server.url, num_retries=2, timeout_s=30), store=str(store.engine.url),
                        guidelines="generic", workers=workers, tracking_uri="none", program="uncompiled")
    server_cpu, cpu, wall = process_cpu_s(server_pid), _cpu_with_children(), time.perf_counter()
    summary = run_in_processes(settings, pairs, processes, progress=False)
    wall, cpu, server_cpu = time.perf_counter() - wall, _cpu_with_children() - cpu, process_cpu_s(server_pid) - server_cpu
    return {
        "processes": processes,
        "workers_each": workers,
        **pace(n_pairs, wall, ideal=processes * workers / server.latency_s),
        "rae_cpu_ms_per_pair": round(1000 * cpu / n_pairs, 2),  # the parent and its worker processes
        "fake_server_cpu_ms_per_pair": round(1000 * server_cpu / n_pairs, 2),
        "lm_calls": summary.total_calls,
        "failed_or_not_judged": summary.failed + summary.not_judged,
    }


def ray_throughput(workers: int, n_pairs: int, directory: Path) -> dict[str, Any]:
    """A two-node Ray cluster on this machine, in a loopback-only network namespace (``bench/ray_cluster_run.py``);
    skipped, with the reason, where that cannot be made (not root, no ``unshare``)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return {"skipped": "needs root and unshare, for a loopback-only network namespace"}
    run = subprocess.run(["unshare", "-n", sys.executable, "-m", "bench.ray_cluster_run", str(directory), str(workers), str(n_pairs)],
                         capture_output=True, text=True, timeout=1800, cwd=Path(__file__).parents[1])
    if run.returncode != 0:
        return {"failed": run.stderr[-500:]}
    result = [line for line in run.stdout.splitlines() if line.startswith('{"nodes"')]  # Ray forwards its nodes' logs too
    return json.loads(result[-1]) if result else {"failed": "the run printed no result: " + run.stdout[-300:]}


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_with_children() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

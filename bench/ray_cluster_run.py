"""One benchmark run on a two-node Ray cluster, inside a loopback-only network namespace (``unshare -n``):

    python -m bench.ray_cluster_run DIRECTORY WORKERS PAIRS

It starts the fake model server (200 ms) and a head and a second node (one CPU each) on 127.0.0.1, judges the pairs
over the cluster (one task per node at a time, each with WORKERS workers), prints one JSON line, and stops everything
it started.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.scaleout import process_cpu_s
from bench.workloads import bench_pairs, fresh_store, pace
from rae.config import ModelSpec, Settings
from rae.scaleout.ray_cluster import run_on_ray
from rae.workspace import Workspace

PORT = 6411


def main(directory: Path, workers: int, n_pairs: int) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {"RAY_USAGE_STATS_ENABLED": "0", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    ray = str(Path(sys.executable).parent / "ray")
    server = subprocess.Popen([sys.executable, "-m", "bench.fake_server", "--latency", "0.2"], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false",
                        "--disable-usage-stats"], check=True, capture_output=True, env=env)
        subprocess.run([ray, "start", f"--address=127.0.0.1:{PORT}", "--node-ip-address=127.0.0.1", "--num-cpus=1"], check=True, capture_output=True, env=env)
        pairs, _ = bench_pairs(n_pairs)
        store = fresh_store(directory)
        settings = Settings(model=ModelSpec(name="openai/bench", api_base=url, num_retries=2, timeout_s=30), store=str(store.engine.url),
                            guidelines="generic", workers=workers, tracking_uri="none", program="uncompiled")
        machine_cpu, server_cpu, wall = busy_cpu_s(), process_cpu_s(server.pid), time.perf_counter()
        summary = run_on_ray(Workspace(settings), pairs, f"127.0.0.1:{PORT}", progress=False)
        wall, server_cpu = time.perf_counter() - wall, process_cpu_s(server.pid) - server_cpu
        rae_cpu = busy_cpu_s() - machine_cpu - server_cpu  # the driver, the nodes' tasks, and Ray's own daemons
        print(json.dumps({"nodes": 2, "workers_each": workers, **pace(n_pairs, wall, ideal=2 * workers / 0.2),
                          "rae_and_ray_cpu_ms_per_pair": round(1000 * rae_cpu / n_pairs, 2),
                          "fake_server_cpu_ms_per_pair": round(1000 * server_cpu / n_pairs, 2), "lm_calls": summary.total_calls,
                          "failed_or_not_judged": summary.failed + summary.not_judged}))
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env)
        server.kill()


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (``/proc/stat``): Ray's workers are not this process's children."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))

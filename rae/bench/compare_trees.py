"""What a change bought in rae's CPU per pair: the same workload on several source trees, in alternating runs.

On a shared 2-core machine one run of the 64-worker workload varies by about 20% from one minute to the next, more
than most single changes save. So each tree (a ``git worktree`` of a commit) is run in turn, round after round, and
the medians compared: the machine's drift falls on every tree alike. Each run is a fresh interpreter with the tree on
its ``PYTHONPATH`` and its own fake server, measuring ``annotation_throughput`` (which every tree since the benchmark
began has): pairs per second and rae's CPU per pair.

    git worktree add /tmp/before <commit>
    python -m rae.bench.compare_trees /tmp/before . --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RUN = """
import json, sys
from pathlib import Path
from rae.bench.__main__ import server_process
from rae.bench.workloads import annotation_throughput, temporary_directory
pairs, workers, latency = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
with temporary_directory() as directory, server_process(latency) as started:
    server = started[0] if isinstance(started, tuple) else started
    print(json.dumps(annotation_throughput(server, workers, pairs, Path(directory))))
"""


def one_run(tree: Path, pairs: int, workers: int, latency_s: float) -> dict:
    """One measurement of ``tree``'s code, in a fresh interpreter."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", RUN, str(pairs), str(workers), str(latency_s)], cwd=tree, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"{tree}: the run failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rae.bench.compare_trees", description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path, help="source trees (git worktrees) to compare, in this order")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=3200)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    runs: list[list[dict]] = [[] for _ in args.trees]  # by position: a tree may be named twice (to see the spread)
    for round_ in range(1, args.rounds + 1):
        for tree, results in zip(args.trees, runs, strict=True):
            result = one_run(tree.resolve(), args.pairs, args.workers, args.latency)
            results.append(result)
            switches = result.get("context_switches_per_pair")  # reported by trees from 2026-11-30 on
            seen = f", {switches['voluntary']} + {switches['involuntary']} context switches a pair" if switches else ""
            print(f"round {round_} {tree}: {result['pairs_per_s']} pairs/s, {result['framework_cpu_ms_per_pair']} ms a pair{seen}", file=sys.stderr)
    print(f"{'tree':<40} {'pairs/s':>9} {'ms a pair':>10}   (medians of {args.rounds})")
    for tree, results in zip(args.trees, runs, strict=True):
        speed = statistics.median(r["pairs_per_s"] for r in results)
        cpu = statistics.median(r["framework_cpu_ms_per_pair"] for r in results)
        print(f"{str(tree):<40} {speed:>9.1f} {cpu:>10.2f}")


if __name__ == "__main__":
    main()

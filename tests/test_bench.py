"""The benchmark runs (small): every measurement is produced and the cache check holds. No timing is asserted here;
speed is measured by `make bench`."""

import json
import subprocess
import sys


def test_the_benchmark_runs_and_reports_every_measurement():
    result = subprocess.run([sys.executable, "-m", "rae.bench", "--quick", "--skip-embedded"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"machine", "throughput_200ms", "naive_vs_rae", "cache", "large_run_1s", "store", "targets"} <= set(report)
    assert all(run["lm_calls"] == run["pairs"] and run["failed_or_not_judged"] == 0 for run in report["throughput_200ms"])
    assert report["cache"]["second_engine_paid_exactly_its_new_pairs"] is True
    assert report["store"]["found"] > 0 and report["large_run_1s"]["peak_memory_mib"] > 0
    scaleout = report["scaleout_200ms"]
    for row in (scaleout["one_process"], scaleout["two_processes"]):
        assert row["lm_calls"] == row["pairs"] and row["failed_or_not_judged"] == 0 and row["fake_server_cpu_ms_per_pair"] > 0
    ray = scaleout["ray_two_nodes"]
    assert "skipped" in ray or (ray["lm_calls"] == ray["pairs"] and ray["failed_or_not_judged"] == 0), ray


def test_trees_are_compared_in_alternating_runs(tmp_path):
    """Two trees (here the same one twice), two rounds, small: every run reports, and the medians are printed per tree."""
    from pathlib import Path

    tree = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "rae.bench.compare_trees", str(tree), str(tree), "--rounds", "2", "--pairs", "12", "--workers", "4", "--latency", "0.01"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    assert done.stderr.count("pairs/s") == 4
    rows = [line for line in done.stdout.splitlines() if line.startswith(str(tree))]
    assert len(rows) == 2 and all(float(row.split()[-1]) > 0 for row in rows)


def test_the_http_exchange_is_measured_both_ways():
    done = subprocess.run(
        [sys.executable, "-m", "rae.bench.http_exchange", "--requests", "20", "--rounds", "1"], capture_output=True, text=True, check=True
    )
    rows = done.stdout.splitlines()
    assert [row.split()[0] for row in rows] == ["http.client", "rae.lm.connections", "thread"]
    assert all(float(row.split()[1]) > 0 for row in rows[:2]) and float(rows[2].split()[3]) > 0

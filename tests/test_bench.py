"""The benchmark runs (small): every measurement is produced and the cache check holds. No timing is asserted here;
speed is measured by `make bench`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_the_benchmark_runs_and_reports_every_measurement():
    root = Path(__file__).resolve().parents[1]  # the benchmark is a checkout's, not installed with rae
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--skip-embedded"], capture_output=True, text=True, timeout=600, cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"machine", "throughput_200ms", "naive_vs_rae", "cache", "large_run_1s", "store", "targets"} <= set(report)
    assert all(run["lm_calls"] == run["pairs"] and run["failed_or_not_judged"] == 0 for run in report["throughput_200ms"])
    assert report["cache"]["second_engine_paid_exactly_its_new_pairs"] is True
    assert report["store"]["found"] > 0 and report["large_run_1s"]["peak_memory_mib"] > 0
    shares = report["time_shares_200ms"]["mean_ms_per_judgment"]
    assert shares["server"] >= 200 and shares["whole_step"] >= shares["server"]  # the fake server answers after 200 ms
    assert report["machine"]["cpu"]
    scaleout = report["scaleout_200ms"]
    for row in (scaleout["one_process"], scaleout["two_processes"]):
        assert row["lm_calls"] == row["pairs"] and row["failed_or_not_judged"] == 0 and row["fake_server_cpu_ms_per_pair"] > 0
    ray = scaleout["ray_two_nodes"]
    assert "skipped" in ray or (ray["lm_calls"] == ray["pairs"] and ray["failed_or_not_judged"] == 0), ray


@pytest.mark.embedded
def test_the_embedded_models_threads_are_measured_idle_and_busy():
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "bench.embedded_threads", "--threads", "1", "--judgments", "1"], capture_output=True, text=True,
                          timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["threads"], r["busy_process"]) for r in rows] == [(1, False), (1, True)] and all(r["median_s"] > 0 for r in rows)

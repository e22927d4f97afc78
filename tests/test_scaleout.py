"""Past one process: several processes on one machine share the work by query and the store's claims; a Ray cluster
(tests/test_ray.py) does the same across nodes."""

import json
import subprocess
import sys

from bench.fake_server import FakeServer
from rae.datasets.bundled import esci_us
from rae.datasets.records import Pair
from rae.scaleout.shards import shards_by_query
from tests.test_reliability import config, judgment_requests, judgments, pairs_file
from tests.test_reliability import config as config_file


def test_shards_keep_each_querys_pairs_together_and_balance_them():
    pairs = [Pair(f"q{q}", f"query {q}", f"p{i}") for q in range(7) for i in range(q + 1)]
    shards = shards_by_query(pairs, 3)
    assert len(shards) == 3 and sorted((p for shard in shards for p in shard), key=str) == sorted(pairs, key=str)
    for shard in shards:
        assert all(all(p in shard for p in pairs if p.query == q.query) for q in shard)  # a query is in one shard only
    sizes = sorted(map(len, shards))
    assert sizes[-1] - sizes[0] <= 7  # the largest query's size at most


def test_two_processes_judge_every_pair_once_with_the_labels_of_one(store_url, tmp_path):
    pairs = esci_us().pairs("dev", queries=6, per_query=6)
    listed = pairs_file(tmp_path, "pairs", pairs)
    with FakeServer(latency_s=0.02) as server:
        args = [sys.executable, "-m", "rae", "annotate", "--pairs", str(listed), "--program", "uncompiled"]
        run = subprocess.run([*args, "--config", str(config(tmp_path, "two", store_url, server)), "--processes", "2"], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert f"{len(pairs)} pairs: {len(pairs)} judged" in run.stdout  # one closing line, the totals of both processes
        assert judgment_requests(server) == len(pairs)  # no pair paid twice
        one_url = f"sqlite:///{tmp_path / 'one.db'}"
        once = subprocess.run([*args, "--config", str(config(tmp_path, "one", one_url, server))], capture_output=True, text=True, timeout=300)
        assert once.returncode == 0, once.stderr
    assert judgments(store_url) == judgments(one_url)


def test_evaluate_in_two_processes_gives_the_numbers_of_one(tmp_path):
    args = ["evaluate", "--engines", "bm25-title,bm25-full", "--split", "dev", "--queries", "4", "--k", "5", "--json", "--no-mlflow"]
    with FakeServer(latency_s=0.01) as server:
        results = {}
        for name, extra in (("one", []), ("two", ["--processes", "2"])):
            config = config_file(tmp_path, name, f"sqlite:///{tmp_path / (name + '.db')}", server)
            run = subprocess.run([sys.executable, "-m", "rae", *args, "--config", str(config), *extra], capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert run.returncode == 0, run.stderr
            results[name] = json.loads(run.stdout)
    for engine in ("bm25-title", "bm25-full"):
        assert results["two"]["engines"][engine]["metrics"] == results["one"]["engines"][engine]["metrics"]
        assert results["two"]["engines"][engine]["judgment_calls"] == results["one"]["engines"][engine]["judgment_calls"]

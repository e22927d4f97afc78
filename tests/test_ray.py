"""An annotation on a real two-node Ray cluster, one node lost midway (see tests/ray_scenario.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rae.config import ConfigError
from rae.scaleout.ray_cluster import refuse_unshareable_store

pytestmark = pytest.mark.slow
SCENARIO = Path(__file__).parent / "ray_scenario.py"
needs_a_namespace = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
    reason="the Ray scenario runs in a loopback-only network namespace: it needs root, unshare and ip (CI has them)",
)


def test_a_sqlite_store_is_refused_when_a_node_is_another_machine():
    refuse_unshareable_store("sqlite:///.rae/rae.db", ["127.0.0.1", "127.0.0.1"])  # every node here: allowed
    refuse_unshareable_store("postgresql+psycopg://db/rae", ["10.0.0.7"])  # a server every node reaches: allowed
    with pytest.raises(ConfigError, match=r"Ray nodes at 10\.0\.0\.7 cannot share: use a PostgreSQL store"):
        refuse_unshareable_store("sqlite:///.rae/rae.db", ["127.0.0.1", "10.0.0.7"])


@needs_a_namespace
def test_a_two_node_cluster_judges_every_pair_once_and_survives_a_lost_node(tmp_path):
    run = subprocess.run(["unshare", "-n", sys.executable, str(SCENARIO), str(tmp_path), "6401"], capture_output=True, text=True, timeout=600,
                         cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["returncode"] == 0, result["stderr"]
    pairs = {f"{q}|{p}" for q, p in result["pairs"]}
    assert result["killed_at_stored"] is not None  # the node was lost midway
    assert set(result["cluster"]) == pairs  # every pair judged, none twice in the store
    assert f"{len(pairs)} pairs: {len(pairs)} judged" in result["stdout"]
    # Paid at most once, except the calls the lost node had in flight (2 workers on its one task).
    assert len(pairs) <= result["requests"] <= len(pairs) + 2
    assert result["cluster"] == result["single"]  # the same labels as one plain process
    budget = result["budget"]  # --budget reaches the Ray tasks through one ledger, and holds when a node is lost
    assert budget["returncode"] == 0, budget["stderr"]
    first, more = budget["ledgers"]
    assert first["spent_usd"] <= first["limit_usd"] == 0.1 and first["refused"] > 0 and budget["killed_at"] is not None
    assert "the budget stopped the run" in budget["stdout"] and budget["judged"] < budget["pairs"]
    assert budget["more_returncode"] == 0 and budget["judged_in_all"] == budget["pairs"] and more["refused"] == 0, budget["more_stderr"]

"""What a team's long paid run must survive: a SIGKILL midway, and two runs writing into one store at once.

Both run the real command line in separate processes against a local OpenAI-compatible server that answers each
prompt deterministically, so the labels of interrupted and concurrent runs can be compared with an undisturbed one.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from bench.fake_server import FakeServer
from rae.datasets.bundled import esci_us
from rae.store.schema import JudgmentRow
from rae.store.store import Store

WORKERS = 4


def config(tmp_path: Path, name: str, store_url: str, server: FakeServer) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'store = "{store_url}"\nworkers = {WORKERS}\ntracking_uri = "none"\n'
        f'[model]\nname = "openai/judge"\napi_base = "{server.url}"\nnum_retries = 2\n'
    )
    return path


def pairs_file(tmp_path: Path, name: str, pairs) -> Path:
    path = tmp_path / f"{name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "query", "product_id"])
        writer.writerows((p.query_id, p.query, p.product_id) for p in pairs)
    return path


def annotate(config_path: Path, pairs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rae", "annotate", "--pairs", str(pairs), "--config", str(config_path), "--program", "uncompiled"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def judgments(store_url: str) -> dict[tuple[str, str], str]:
    with Store(store_url).session() as session:
        return {(r.query_id, r.product_id): r.label for r in session.scalars(select(JudgmentRow))}


def judgment_requests(server: FakeServer) -> int:
    return sum("[[ ## product ## ]]" in b["messages"][-1]["content"] for b in server.recorded.bodies)


def test_a_killed_run_loses_nothing_it_paid_for_and_pays_nothing_twice(store_url, tmp_path):
    pairs = esci_us().pairs("dev", queries=3, per_query=12)
    listed = pairs_file(tmp_path, "pairs", pairs)
    with FakeServer(latency_s=0.05) as server:
        run = annotate(config(tmp_path, "run", store_url, server), listed)
        store = Store(store_url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with store.session() as session:
                stored = session.scalar(select(func.count()).select_from(JudgmentRow))
            if stored >= 12:
                break
            time.sleep(0.05)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        stored_at_kill = judgments(store_url)
        asked_before = judgment_requests(server)
        assert 12 <= len(stored_at_kill) < len(pairs)
        in_flight = asked_before - len(stored_at_kill)
        assert 0 <= in_flight <= WORKERS  # answered or asked, but not stored when killed

        rerun = annotate(config(tmp_path, "run", store_url, server), listed)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err
        assert f"{len(pairs)} pairs: {len(pairs)} judged" in out
        assert judgment_requests(server) - asked_before == len(pairs) - len(stored_at_kill)  # only the missing ones
        final = judgments(store_url)
        assert all(final[key] == label for key, label in stored_at_kill.items())  # nothing stored was lost or changed

        undisturbed_url = f"sqlite:///{tmp_path / 'undisturbed.db'}"
        once = annotate(config(tmp_path, "undisturbed", undisturbed_url, server), listed)
        assert once.wait(timeout=300) == 0
    assert final == judgments(undisturbed_url)  # the same totals, label for label, as a run never killed


def test_two_runs_on_overlapping_pairs_share_one_store_without_duplicates(store_url, tmp_path):
    pairs = esci_us().pairs("dev", queries=6, per_query=8)
    queries = sorted({p.query_id for p in pairs})
    first = [p for p in pairs if p.query_id in queries[:4]]
    second = [p for p in pairs if p.query_id in queries[2:]]
    with FakeServer(latency_s=0.05) as server:
        a = annotate(config(tmp_path, "a", store_url, server), pairs_file(tmp_path, "a", first))
        b = annotate(config(tmp_path, "b", store_url, server), pairs_file(tmp_path, "b", second))
        for run in (a, b):
            _, err = run.communicate(timeout=300)
            assert run.returncode == 0, err
        requests = judgment_requests(server)
    union = {(p.query_id, p.product_id) for p in first + second}
    stored = judgments(store_url)
    assert set(stored) == union and len(stored) == len(union)
    assert requests == len(union)  # no pair paid twice, though both runs needed the overlapping ones at once
    if store_url.startswith("sqlite"):
        with Store(store_url).engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_a_claim_held_by_a_live_process_waits_and_a_dead_or_expired_one_is_taken_over(store):
    from datetime import UTC, datetime, timedelta

    from rae.store.schema import ClaimRow
    from rae.store.store import HOST

    def claim(key: str, owner: str) -> bool:
        return store.read_or_claim([key], owner, lease_s=60)[key].held

    assert claim("k1", "me") and claim("k1", "me")  # "me" holds it, and may again
    assert not claim("k1", "my neighbour")  # another claimant of this very process must wait
    store.release(["k1"], "me")
    assert claim("k1", "my neighbour")
    holders = {
        "live": ClaimRow(fingerprint="k2", owner="other", host=HOST, pid=os.getppid(), expires_at=datetime.now(UTC) + timedelta(seconds=60)),
        "dead": ClaimRow(fingerprint="k3", owner="other", host=HOST, pid=2**22 + 7, expires_at=datetime.now(UTC) + timedelta(seconds=60)),
        "expired": ClaimRow(fingerprint="k4", owner="other", host="elsewhere", pid=1, expires_at=datetime.now(UTC) - timedelta(seconds=1)),
        "remote": ClaimRow(fingerprint="k5", owner="other", host="elsewhere", pid=1, expires_at=datetime.now(UTC) + timedelta(seconds=60)),
    }
    for row in holders.values():
        store.replace(row)
    assert not claim("k2", "me")  # a live process on this host is paying for it: wait
    assert claim("k3", "me")  # its process is gone (killed): take it over at once
    assert claim("k4", "me")  # its lease ran out
    assert not claim("k5", "me")  # another host's, still leased: wait


def test_processes_opening_a_new_store_at_the_same_moment_all_get_one_schema(store_url):
    """Two rae commands started together on an empty database both create its tables; neither may fail on the race."""
    script = "import sys, time; from rae.store.store import Store; time.sleep(max(0.0, float(sys.argv[2]) - time.time())); Store(sys.argv[1])"
    start = str(time.time() + 8)  # after every process has imported rae, so that they race for the schema
    runs = [subprocess.Popen([sys.executable, "-c", script, store_url, start], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    with Store(store_url).engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(JudgmentRow)).scalar() == 0

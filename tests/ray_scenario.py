"""The Ray scenario, run by tests/test_ray.py inside a network namespace that has only loopback (``unshare -n``), so
that every process of it (the fake model server, a two-node Ray cluster, rae) talks on 127.0.0.1 only.

    python tests/ray_scenario.py DIRECTORY PORT

1. The fake model server starts (it answers after 0.3 s), then a Ray head node and a second node (``--block``, in a
   process group of its own), one CPU each.
2. ``rae annotate --ray`` judges the pairs; once the store holds a few judgments, the second node's whole process
   group is killed (SIGKILL), as a lost machine would be. Ray runs its tasks again on the head node.
3. The same pairs judged by one plain process, into another store.
4. A second node joins again, and ``rae annotate --ray --budget`` judges other pairs at a price; once the store holds
   a judgment, that node is lost too. Then the same command with more budget judges the rest.

It writes DIRECTORY/result.json: the pairs, the stored judgments of both runs, the judgment requests the server saw,
what rae printed, when the node was killed, and the budget run's ledgers. Everything it started is stopped before it
exits.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import func, select

from rae.datasets.bundled import esci_us
from rae.store.schema import BudgetRow, JudgmentRow
from rae.store.store import Store

VENV = Path(sys.executable).parent
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}


def main(directory: Path, port: int) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    pairs = esci_us().pairs("dev", queries=8, per_query=5)
    listed = directory / "pairs.csv"
    listed.write_text("query_id,query,product_id\n" + "".join(f'{p.query_id},"{p.query}",{p.product_id}\n' for p in pairs))
    started: list[subprocess.Popen] = []
    try:
        server = subprocess.Popen([sys.executable, "-m", "bench.fake_server", "--latency", "0.3"], stdout=subprocess.PIPE, text=True, env=ENV)
        started.append(server)
        url = server.stdout.readline().strip()
        ray = str(VENV / "ray")
        subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                        "--disable-usage-stats"], check=True, capture_output=True, env=ENV)
        node = subprocess.Popen([ray, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--block"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=ENV)
        started.append(node)
        _wait_for_nodes(port, 2)
        result = {"pairs": [[p.query_id, p.product_id] for p in pairs]}
        result.update(_annotate_with_a_node_lost(directory, url, port, listed, node))
        result["single"] = _annotate_once(directory, url, listed)
        again = subprocess.Popen([ray, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--block"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=ENV)
        started.append(again)
        _wait_for_nodes(port, 2)
        result["budget"] = _annotate_within_a_budget(directory, url, port, again)
        (directory / "result.json").write_text(json.dumps(result))
    finally:
        subprocess.run([str(VENV / "ray"), "stop", "--force"], capture_output=True, env=ENV)
        for process in started:
            with _quietly():
                os.killpg(process.pid, signal.SIGKILL) if process is started[-1] else process.kill()


def _annotate_with_a_node_lost(directory: Path, url: str, port: int, listed: Path, node: subprocess.Popen) -> dict:
    store = f"sqlite:///{directory / 'cluster.db'}"
    config = _config(directory, "cluster", url, store)
    run = subprocess.Popen([sys.executable, "-m", "rae", "annotate", "--pairs", str(listed), "--config", str(config), "--program", "uncompiled",
                            "--ray", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=directory, env=ENV)
    killed_at = None
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline:
        if killed_at is None and _stored(store) >= 4:
            os.killpg(node.pid, signal.SIGKILL)  # the second node, its raylet and its workers: a lost machine
            killed_at = _stored(store)
        time.sleep(0.1)
    out, err = run.communicate(timeout=300)
    return {"returncode": run.returncode, "stdout": out, "stderr": err[-3000:], "killed_at_stored": killed_at,
            "requests": _stats(url)["judgments"], "cluster": _labels(store)}


def _annotate_once(directory: Path, url: str, listed: Path) -> dict:
    store = f"sqlite:///{directory / 'single.db'}"
    config = _config(directory, "single", url, store)
    subprocess.run([sys.executable, "-m", "rae", "annotate", "--pairs", str(listed), "--config", str(config), "--program", "uncompiled"],
                   check=True, capture_output=True, cwd=directory, env=ENV)
    return _labels(store)


def _annotate_within_a_budget(directory: Path, url: str, port: int, node: subprocess.Popen) -> dict:
    """Other pairs at a price under a budget that stops the run, on two nodes, one lost once a judgment is stored; then
    the same command with more budget. What each run said, the ledgers, and how many pairs the store holds."""
    store = f"sqlite:///{directory / 'budget.db'}"
    config = _config(directory, "budget", url, store, 'max_tokens = 256\n[prices."openai/judge"]\ninput_per_million = 10.0\noutput_per_million = 20.0\n')
    pairs = esci_us().pairs("test", queries=4, per_query=5)
    listed = directory / "budget.csv"
    listed.write_text("query_id,query,product_id\n" + "".join(f'{p.query_id},"{p.query}",{p.product_id}\n' for p in pairs))
    command = [sys.executable, "-m", "rae", "annotate", "--pairs", str(listed), "--config", str(config), "--program", "uncompiled",
               "--ray", f"127.0.0.1:{port}", "--budget"]
    run = subprocess.Popen([*command, "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=directory, env=ENV)
    killed_at = None
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline:
        if killed_at is None and _stored(store) >= 1:
            os.killpg(node.pid, signal.SIGKILL)
            killed_at = _stored(store)
        time.sleep(0.1)
    out, err = run.communicate(timeout=300)
    stopped_at = _stored(store)
    more = subprocess.run([*command, "100"], capture_output=True, text=True, cwd=directory, env=ENV, timeout=300)
    with Store(store).engine.connect() as connection:
        ledgers = [dict(row._mapping) for row in connection.execute(select(BudgetRow.__table__).order_by(BudgetRow.__table__.c.created_at))]
    return {"returncode": run.returncode, "stdout": out, "stderr": err[-3000:], "pairs": len(pairs), "judged": stopped_at, "killed_at": killed_at,
            "more_returncode": more.returncode, "more_stdout": more.stdout, "more_stderr": more.stderr[-3000:], "judged_in_all": _stored(store),
            "ledgers": [{k: v for k, v in ledger.items() if k != "created_at"} for ledger in ledgers]}


def _config(directory: Path, name: str, url: str, store: str, extra: str = "") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(f'store = "{store}"\nworkers = 2\ntracking_uri = "none"\n[model]\nname = "openai/judge"\napi_base = "{url}"\nnum_retries = 2\n{extra}')
    return path


def _stored(store: str) -> int:
    with Store(store).engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(JudgmentRow)).scalar()


def _labels(store: str) -> dict[str, str]:
    with Store(store).session() as session:
        return {f"{r.query_id}|{r.product_id}": r.label for r in session.scalars(select(JudgmentRow))}


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as answer:
        return json.loads(answer.read())


def _wait_for_nodes(port: int, count: int) -> None:
    probe = f"import ray; ray.init(address='127.0.0.1:{port}', log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    for _ in range(60):
        answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV)
        if answer.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster never had {count} nodes")


class _quietly:
    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> bool:
        return True


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))

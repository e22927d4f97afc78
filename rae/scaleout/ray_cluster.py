"""A Ray cluster (``--ray ADDRESS``, config ``[ray] address``): the same query shards as Ray tasks, on every node.

``auto`` joins the cluster running on this machine (``ray start``), an address joins that one, ``local`` starts a
one-node Ray here. Each task builds its own workspace from the settings (relative paths made absolute first, since a
task does not run in the caller's directory) and writes to the one store every node shares: a PostgreSQL server, or
a SQLite file only when every node of the cluster is this machine (a SQLite file cannot be shared across hosts, and
rae refuses it with one line rather than let nodes write to copies). Every task reserves its calls against the run's
one budget, a ledger in that store. A task whose node dies is run again by Ray on another node (``max_retries``); what
the lost node had stored is read back from the store, only its calls in flight are paid twice, and their reservations
stay counted as spent, so the budget holds across the loss. rae must be installed on every node (the same version), with the model's key in the nodes'
environment if it needs one.
"""

import ipaddress
import socket
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from tqdm import tqdm

from rae.annotate.run import AnnotationAborted
from rae.annotate.spending import Budget
from rae.annotate.summary import AnnotationSummary
from rae.config import ConfigError, Settings
from rae.datasets.records import Pair
from rae.programs.artifacts import UNCOMPILED, artifact_home
from rae.scaleout.processes import ShardJob, annotate_shard
from rae.scaleout.shards import shards_by_query
from rae.workspace import Workspace

TASK_RETRIES = 3
SHARDS_PER_CPU = 2


def run_on_ray(
    workspace: Workspace, pairs: list[Pair], address: str, run_id: str | None = None, retry_failed: bool = False,
    budget: Budget | None = None, progress: bool = True,
) -> AnnotationSummary:
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, log_to_driver=False, include_dashboard=False, ignore_reinit_error=True)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    refuse_unshareable_store(workspace.settings.store, [n["NodeManagerAddress"] for n in nodes])
    cpus = int(sum(n["Resources"].get("CPU", 0) for n in nodes)) or 1
    shards = shards_by_query(list(dict.fromkeys(pairs)), cpus * SHARDS_PER_CPU)
    settings = portable(workspace).model_dump_json()
    task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(_run_shard)
    pending = {task.remote(ShardJob(settings, shard, run_id, retry_failed, budget)): len(shard) for shard in shards}
    summary = AnnotationSummary()
    with tqdm(total=sum(pending.values()), desc="judgments", unit="judgment", disable=not progress, leave=False) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for reference in ready:
                bar.update(pending.pop(reference))
                outcome = ray.get(reference)
                if isinstance(outcome, str):
                    raise AnnotationAborted(outcome)
                summary = summary + outcome
    return summary


def refuse_unshareable_store(store: str, node_addresses: list[str]) -> None:
    """A SQLite file is this machine's: allowed only when every node of the cluster is this machine."""
    if make_url(store).get_backend_name() != "sqlite":
        return
    elsewhere = sorted({a for a in node_addresses if not _is_this_machine(a)})
    if elsewhere:
        raise ConfigError(
            f"the store is a SQLite file on this machine, which the Ray nodes at {', '.join(elsewhere)} cannot share: "
            "use a PostgreSQL store (--store postgresql+psycopg://...)"
        )


def portable(workspace: Workspace) -> Settings:
    """The settings with every path made absolute, for a task that runs in another directory, and the program pinned."""
    settings = workspace.settings
    updates: dict[str, Any] = {name: str(Path(getattr(settings, name)).resolve()) for name in ("cache_dir", "reports_dir")}
    updates |= pinned_program(workspace)
    url = make_url(settings.store)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        updates["store"] = url.set(database=str(Path(url.database).resolve())).render_as_string(hide_password=False)
    data = settings.data.model_copy(update={k: str(Path(v).resolve()) for k in ("labels", "catalog") if (v := getattr(settings.data, k))})
    return settings.model_copy(update={**updates, "data": data})


def _run_shard(job: ShardJob) -> AnnotationSummary | str:
    """A Ray task: one shard, through the node's own workspace (no progress queue: the driver counts shards)."""
    return annotate_shard(job, _Nowhere())


class _Nowhere:
    def put(self, _: int) -> None:
        pass


def _is_this_machine(address: str) -> bool:
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        return False
    hostname = socket.gethostname()
    try:
        mine = set(socket.gethostbyname_ex(hostname)[2])
    except OSError:
        mine = set()
    return address in mine


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'rae[ray]' (make install includes it)") from None
    return ray


def pinned_program(workspace: Workspace) -> dict[str, str]:
    """The program the driver runs and the one directory that holds it: a task elsewhere cannot find the project's
    ./programs, nor choose as the driver did between it and the artifacts rae ships."""
    manifest = workspace.manifest
    if manifest is None:
        return {"program": UNCOMPILED, "programs_dir": str(workspace.programs_dir.resolve())}
    return {"program": manifest.artifact_id, "programs_dir": str(artifact_home(manifest.artifact_id, workspace.program_dirs).resolve())}

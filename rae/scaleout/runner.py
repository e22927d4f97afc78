"""Where an annotation runs: in this process (threads), in several processes, on a Ray cluster, or as batches.

Every placement keeps the user's limits: a spending limit (``--budget``) and ``--retry-failed`` reach each of them.
A budget is split evenly between processes and between Ray tasks (together they cannot pass it), and a batch sends
only the requests whose expected cost, at the batch price, fits in what is left of it."""

from dataclasses import dataclass
from pathlib import Path

from rae.annotate.run import AnnotationRun
from rae.annotate.spending import SpendingLimit
from rae.annotate.summary import AnnotationSummary
from rae.datasets.records import Pair
from rae.scaleout.batch import run_in_batches
from rae.scaleout.processes import run_in_processes
from rae.scaleout.ray_cluster import run_on_ray
from rae.workspace import Workspace


@dataclass(frozen=True)
class Placement:
    """How many processes on this machine, or which Ray cluster (``auto``: the one running here), or batches (sent to
    the batch API, or written to a file)."""

    processes: int = 1
    ray: str | None = None
    batch: bool = False
    batch_file: Path | None = None


def annotate_pairs(
    workspace: Workspace, pairs: list[Pair], placement: Placement, run_id: str | None = None, retry_failed: bool = False,
    limit: SpendingLimit | None = None, progress: bool = True,
) -> AnnotationSummary:
    if placement.batch or placement.batch_file is not None:
        return run_in_batches(workspace, pairs, run_id, placement.batch_file, progress, retry_failed, limit)
    if placement.ray is not None:
        return run_on_ray(workspace, pairs, placement.ray, run_id, retry_failed, limit, progress)
    if placement.processes > 1:
        return run_in_processes(workspace.settings, pairs, placement.processes, run_id, retry_failed, limit, progress)
    with workspace.using_model():
        return AnnotationRun(workspace.steps(run_id, retry_failed), workspace.labelled.catalog, workspace.workers, progress, limit).run(pairs)

"""Where an annotation runs: in this process (threads), in several processes, on a Ray cluster, or as batches.

Every placement keeps the user's limits: a spending limit (``--budget``) and ``--retry-failed`` reach each of them.
A budget is split evenly between processes and between Ray tasks (together they cannot pass it), and a batch sends
only the requests whose expected cost, at the batch price, fits in what is left of it."""

from dataclasses import dataclass
from pathlib import Path

from rae.annotate.cost_estimate import spending_limit
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
    return AnnotationRun(workspace.judging(run_id), workspace.labelled.catalog, workspace.workers, progress, limit, retry_failed=retry_failed).run(pairs)


def annotate_recorded(
    workspace: Workspace, pairs: list[Pair], placement: Placement = Placement(), retry_failed: bool = False, budget: float | None = None,
    progress: bool = True,
) -> tuple[str, AnnotationSummary]:
    """``rae annotate``: the pairs judged where the placement says, within the budget, recorded in the store as a run.
    The command line and the Python API both run this. The run's id, and what it did."""
    limit = spending_limit(workspace.judging(), pairs, workspace.labelled.catalog, budget) if budget is not None else None
    with workspace.store.recorded_run("annotate", workspace.settings.model_dump()) as run:
        summary = annotate_pairs(workspace, pairs, placement, run.run_id, retry_failed, limit, progress)
        run.counts = summary.as_dict()
    return run.run_id, summary

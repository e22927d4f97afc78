"""Where an annotation runs: in this process (threads), in several processes, on a Ray cluster, or as batches.

Every placement keeps the user's limits: ``--retry-failed`` reaches each, and so does the budget, which is one ledger
in the store (``rae.annotate.spending``): every process and Ray task reserves each call against it, and a batch
reserves each request when it is submitted, at the batch price."""

from dataclasses import dataclass
from pathlib import Path

from rae.annotate.run import AnnotationRun
from rae.annotate.spending import Budget, budget_state, open_budget
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
    budget: Budget | None = None, progress: bool = True,
) -> AnnotationSummary:
    if placement.batch or placement.batch_file is not None:
        return run_in_batches(workspace, pairs, run_id, placement.batch_file, progress, retry_failed, budget)
    if placement.ray is not None:
        return run_on_ray(workspace, pairs, placement.ray, run_id, retry_failed, budget, progress)
    if placement.processes > 1:
        return run_in_processes(workspace.settings, pairs, placement.processes, run_id, retry_failed, budget, progress)
    run = AnnotationRun(workspace.judging(run_id), workspace.labelled.catalog, workspace.workers, progress, budget, retry_failed=retry_failed)
    return run.run(pairs)


def annotate_recorded(
    workspace: Workspace, pairs: list[Pair], placement: Placement = Placement(), retry_failed: bool = False, budget: float | None = None,
    progress: bool = True,
) -> tuple[str, AnnotationSummary]:
    """``rae annotate``: the pairs judged where the placement says, within the budget, recorded in the store as a run.
    The command line and the Python API both run this. The run's id, and what it did."""
    ledger = open_budget(workspace.store, workspace.paid_models(), budget) if budget is not None else None
    with workspace.store.recorded_run("annotate", workspace.settings.model_dump()) as run:
        summary = annotate_pairs(workspace, pairs, placement, run.run_id, retry_failed, ledger, progress)
        if ledger is not None:
            summary.budget = budget_state(workspace.store, ledger)
        run.counts = summary.as_dict()
    return run.run_id, summary

"""Several processes on one machine (``--processes N``): past one Python interpreter's CPU.

The pairs are split by query (``shards.shards_by_query``); each process builds its own workspace from the settings,
runs its own workers against the same store, and tells the parent of every pair it finishes, so the parent shows
one progress bar and one closing line with the totals. The store's claims keep the processes from paying twice for a
key. A budget is split evenly between the processes, so together they cannot pass it. An embedded model gets its
share of the cores in each process.
"""

import multiprocessing
import os
import queue
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from tqdm import tqdm

from rae.annotate.run import AnnotationAborted, AnnotationRun
from rae.annotate.spending import SpendingLimit
from rae.annotate.summary import AnnotationSummary
from rae.config import Settings
from rae.datasets.records import Pair
from rae.errors import RaeError
from rae.scaleout.shards import shards_by_query
from rae.workspace import Workspace


@dataclass(frozen=True)
class ShardJob:
    """What one process needs: the settings (as JSON, so any start method can carry them) and its pairs."""

    settings: str
    pairs: list[Pair]
    run_id: str | None
    retry_failed: bool
    budget: tuple[float, float] | None  # (limit, expected cost of a call) of this process's share


def run_in_processes(
    settings: Settings, pairs: list[Pair], processes: int, run_id: str | None = None, retry_failed: bool = False,
    limit: SpendingLimit | None = None, progress: bool = True,
) -> AnnotationSummary:
    shards = shards_by_query(list(dict.fromkeys(pairs)), processes)
    per_process = per_process_settings(settings, len(shards))
    budget = shard_budget(limit, len(shards))
    context = multiprocessing.get_context("spawn")  # a fork would copy the parent's threads and open connections
    summary = AnnotationSummary()
    with context.Manager() as manager, ProcessPoolExecutor(len(shards), mp_context=context) as pool:
        done = manager.Queue()
        futures = [pool.submit(annotate_shard, ShardJob(per_process, shard, run_id, retry_failed, budget), done) for shard in shards]
        with tqdm(total=sum(map(len, shards)), desc="judgments", unit="judgment", disable=not progress, leave=False) as bar:
            _follow(futures, done, bar)
        for future in futures:
            outcome = future.result()
            if isinstance(outcome, str):
                raise AnnotationAborted(outcome)
            summary = summary + outcome
    if limit is not None and summary.stopped_at_budget is not None:
        summary.stopped_at_budget = limit.limit  # the whole budget, not one process's share
    return summary


def shard_budget(limit: SpendingLimit | None, shards: int) -> tuple[float, float] | None:
    """Each shard's share of a spending limit: (limit, expected cost of a call), or None without a limit."""
    return (limit.limit / max(1, shards), limit.expected) if limit is not None else None


def per_process_settings(settings: Settings, processes: int) -> str:
    """The settings each process runs with: an embedded model gets its share of the cores."""
    if settings.model.is_embedded and settings.model.n_threads is None:
        model = settings.model.model_copy(update={"n_threads": max(1, (os.cpu_count() or 1) // processes)})
        settings = settings.model_copy(update={"model": model})
    return settings.model_dump_json()


def annotate_shard(job: ShardJob, done: "queue.Queue[int]") -> AnnotationSummary | str:
    """In a child process: one shard through this process's own workspace. An error is returned as its line."""
    try:
        workspace = Workspace(Settings.model_validate_json(job.settings))
        limit = SpendingLimit(*job.budget) if job.budget is not None else None
        run = AnnotationRun(workspace.judging(job.run_id), workspace.labelled.catalog, workspace.workers, progress=False, limit=limit,
                            on_pair=lambda: done.put(1), retry_failed=job.retry_failed)
        return run.run(job.pairs)
    except RaeError as exc:
        return str(exc)


def _follow(futures: list[Future], done: "queue.Queue[int]", bar: tqdm) -> None:
    """Move the bar as the processes report pairs done, until every process has ended."""
    while not all(f.done() for f in futures) or not done.empty():
        try:
            bar.update(done.get(timeout=0.2))
        except queue.Empty:
            continue

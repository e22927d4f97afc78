"""Several processes on one machine (``--processes N``): past one Python interpreter's CPU.

The pairs are split by query (``shards.shards_by_query``); each process builds its own workspace from the settings,
runs its own workers against the same store, and tells the parent of every pair it finishes, so the parent shows
one progress bar and one closing line with the totals. The store's claims keep the processes from paying twice for a
key. The run's budget is one ledger in the store that every process reserves its calls against. An embedded model
gets its share of the cores in each process.
"""

import multiprocessing
import os
import queue
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from tqdm import tqdm

from rae.annotate.run import AnnotationAborted, AnnotationRun
from rae.annotate.spending import Budget
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
    budget: Budget | None  # the run's ledger, shared by every process and task


def run_in_processes(
    settings: Settings, pairs: list[Pair], processes: int, run_id: str | None = None, retry_failed: bool = False,
    budget: Budget | None = None, progress: bool = True,
) -> AnnotationSummary:
    shards = shards_by_query(list(dict.fromkeys(pairs)), processes)
    per_process = per_process_settings(settings, len(shards))
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
    return summary


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
        run = AnnotationRun(workspace.judging(job.run_id), workspace.labelled.catalog, workspace.workers, progress=False, budget=job.budget,
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

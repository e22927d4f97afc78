"""Run a step over many items on a pool of worker threads, in order, with a progress bar."""

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tqdm import tqdm


def each_concurrently(
    items: list, step: Callable[[Any], Any], workers: int, progress: bool, what: str, on_done: Callable[[], None] | None = None
) -> list:
    """``step`` over ``items`` on ``workers`` threads; results in input order. ``on_done`` is told of each item done
    (a parent process's progress bar, say)."""
    with (
        tqdm(total=len(items), desc=what, unit=what.rstrip("s"), disable=not progress, leave=False) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures: list[Future] = []
        for item in items:
            # Each task runs in a copy of this thread's context, so dspy.context(lm=..., adapter=...) reaches it.
            future = pool.submit(contextvars.copy_context().run, step, item)
            future.add_done_callback(lambda _: bar.update())
            if on_done is not None:
                future.add_done_callback(lambda _: on_done())
            futures.append(future)
        return [future.result() for future in futures]

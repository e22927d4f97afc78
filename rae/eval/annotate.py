"""An annotation run: judge a list of query-product pairs into the store.

First each distinct query's requirements and guidelines (once per query, however many pairs and engines it has),
then every pair, ordered by query so that calls sharing a prompt prefix run together. Both phases run on a pool of
``workers`` threads. Each result is committed when it arrives, so a killed run loses only the calls in flight, and
rerunning the same command continues where it stopped (everything done is a store hit).

An LM error is not an answer and is never stored: a pair whose call failed (server down, rate limit after rae's
retries) is counted and left for the next run. An error that no retry can mend (a bad key, an unknown model) stops
the run at once, as does a server that cannot be reached before any call succeeded, or ten LM errors in a row. With a
spending limit, the run stops before it would pass it.
"""

import contextvars
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dspy.utils.exceptions import (
    LMAuthError,
    LMBillingError,
    LMConfigurationError,
    LMError,
    LMNotConfiguredError,
    LMTransportError,
    LMUnsupportedFeatureError,
    LMUnsupportedModelError,
)
from tqdm import tqdm

from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair
from rae.errors import RaeError
from rae.eval.spending import SpendingLimit
from rae.eval.steps import Spend, StepOutcome, StoredSteps
from rae.programs.guidelines import Guidelines
from rae.secrets import redact

FATAL_ERRORS = (LMAuthError, LMBillingError, LMConfigurationError, LMNotConfiguredError, LMUnsupportedModelError, LMUnsupportedFeatureError)
UNREACHABLE = "unreachable"
MAX_ERRORS_IN_A_ROW = 10


class AnnotationAborted(RaeError, RuntimeError):
    pass


@dataclass
class AnnotationSummary:
    pairs: int = 0
    judged: int = 0
    failed: int = 0
    from_store: int = 0
    not_judged: int = 0
    no_guidelines: int = 0
    errors: int = 0
    stopped_at_budget: float | None = None
    spend: dict[str, Spend] = field(default_factory=lambda: {"requirements_guidelines": Spend(), "judgment": Spend()})
    seconds: float = 0.0
    first_error: str | None = None

    @property
    def lm_calls(self) -> dict[str, int]:
        return {stage: spend.calls for stage, spend in self.spend.items()}

    @property
    def total(self) -> Spend:
        return self.spend["requirements_guidelines"] + self.spend["judgment"]

    @property
    def total_calls(self) -> int:
        return self.total.calls

    def line(self) -> str:
        """The closing line of a run: what was done, what it cost in calls, what is left."""
        calls = self.total_calls
        parts = [
            f"{self.pairs} pairs: {self.judged} judged, {self.failed} failed to parse",
            f"{self.from_store} from the store (cache hits)",
            f"{calls} LM calls made ({self.lm_calls['judgment']} judgments, "
            f"{self.lm_calls['requirements_guidelines']} for requirements and guidelines)",
        ]
        if calls == 0:
            parts[-1] = "0 LM calls made (everything was in the store)"
        else:
            total = self.total
            cost = "unknown cost" if total.cost_usd is None else f"${total.cost_usd:.4f}"
            parts.append(f"{total.input_tokens:,} input + {total.output_tokens:,} output tokens, {cost}")
            if total.retries:
                parts.append(f"{total.retries} retries of transient errors")
        if self.not_judged:
            parts.append(f"{self.not_judged} not judged ({self.errors} LM errors; rerun to resume)")
        if self.stopped_at_budget is not None:
            parts.append(f"stopped before passing the budget of ${self.stopped_at_budget:.4f}; rerun (with more budget) to continue")
        if self.no_guidelines:
            parts.append(f"{self.no_guidelines} without guidelines (their query's guidelines failed to parse)")
        parts.append(f"{_duration(self.seconds)}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "spend"}
        return {**data, "spend": {stage: vars(s) for stage, s in self.spend.items()}, "total_calls": self.total_calls}


class AnnotationRun:
    def __init__(
        self,
        steps: StoredSteps,
        catalog: Catalog,
        workers: int = 1,
        progress: bool = True,
        limit: SpendingLimit | None = None,
        order_by_query: bool = True,
    ):
        self.order_by_query = order_by_query
        self.steps = steps
        self.catalog = catalog
        self.workers = workers
        self.progress = progress
        self.limit = limit
        self._lock = threading.Lock()
        self._errors_in_a_row = 0
        self._calls_answered = 0
        self._fatal: LMError | None = None

    def run(self, pairs: Iterable[Pair]) -> AnnotationSummary:
        """Judge the pairs: in query order (prompts that share a prefix run together), or as given (to measure that)."""
        pairs = list(dict.fromkeys(pairs))
        if self.order_by_query:
            pairs.sort(key=lambda p: (p.query, p.product_id))
        missing = sorted({p.product_id for p in pairs if p.product_id not in self.catalog})
        if missing:
            raise AnnotationAborted(f"{len(missing)} products to judge are not in the catalog, e.g. {', '.join(missing[:3])}")
        summary = AnnotationSummary(pairs=len(pairs))
        started = time.perf_counter()
        try:
            queries = list(dict.fromkeys(p.query for p in pairs))
            guidelines = dict(zip(queries, each_concurrently(queries, self._guidelines(summary), self.workers, self.progress, "guidelines"), strict=True))
            each_concurrently(pairs, self._judgment(summary, guidelines), self.workers, self.progress, "judgments")
        finally:
            summary.seconds = round(time.perf_counter() - started, 2)
        if self._fatal is not None:
            raise AnnotationAborted(f"stopped: {_one_line(self._fatal)} ({summary.judged + summary.failed} pairs stored)")
        if self.limit is not None and self.limit.reached:
            summary.stopped_at_budget = self.limit.limit
        return summary

    def _guidelines(self, summary: AnnotationSummary) -> Callable[[str], Guidelines | str | None]:
        """A query's guidelines; None if they failed to parse; ``UNREACHABLE`` if an LM error kept them from being made."""

        def step(query: str) -> Guidelines | str | None:
            outcome = self._guarded(summary, lambda: self.steps.guidelines(query))
            if outcome is None:
                return UNREACHABLE
            with self._lock:
                summary.spend["requirements_guidelines"] += outcome.spend
            return outcome.value if outcome.ok else None

        return step

    def _judgment(self, summary: AnnotationSummary, guidelines: dict[str, Guidelines | str | None]) -> Callable[[Pair], None]:
        def step(pair: Pair) -> None:
            query_guidelines = guidelines.get(pair.query)
            if query_guidelines is None or query_guidelines == UNREACHABLE:
                with self._lock:
                    if query_guidelines == UNREACHABLE or self._stopping:
                        summary.not_judged += 1
                    else:
                        summary.no_guidelines += 1
                return
            outcome = self._guarded(summary, lambda: self.steps.judgment(pair, query_guidelines, self.catalog[pair.product_id]))
            with self._lock:
                _count(summary, outcome)

        return step

    @property
    def _stopping(self) -> bool:
        """The run is ending early: an error no retry can mend, or the budget."""
        return self._fatal is not None or (self.limit is not None and self.limit.reached)

    def _guarded(self, summary: AnnotationSummary, step: Callable[[], StepOutcome]) -> StepOutcome | None:
        """Run a step; an LM error is counted (and may stop the run) instead of being raised in a worker."""
        if self._fatal is not None:
            return None
        reserved = 0.0
        if self.limit is not None:
            reserved = self.limit.reserve()
            if reserved is None:
                return None
        outcome = None
        try:
            outcome = step()
        except LMError as exc:
            with self._lock:
                summary.errors += 1
                summary.first_error = summary.first_error or _one_line(exc)
                self._errors_in_a_row += 1
                never_reached = isinstance(exc, LMTransportError) and self._calls_answered == 0
                if isinstance(exc, FATAL_ERRORS) or never_reached or self._errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                    self._fatal = self._fatal or exc
            return None
        finally:
            if self.limit is not None:
                spend = outcome.spend if outcome is not None else Spend()
                self.limit.settle(reserved, spend.cost_usd, spend.calls)
        with self._lock:
            self._errors_in_a_row = 0
            self._calls_answered += outcome.spend.calls
        return outcome

def each_concurrently(items: list, step: Callable[[Any], Any], workers: int, progress: bool, what: str) -> list:
    """``step`` over ``items`` on a pool of ``workers`` threads, in order, with a progress bar; results in input order."""
    with (
        tqdm(total=len(items), desc=what, unit=what.rstrip("s"), disable=not progress, leave=False) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        futures: list[Future] = []
        for item in items:
            # Each task runs in a copy of this thread's context, so dspy.context(lm=..., adapter=...) reaches it.
            future = pool.submit(contextvars.copy_context().run, step, item)
            future.add_done_callback(lambda _: bar.update())
            futures.append(future)
        return [future.result() for future in futures]


def _count(summary: AnnotationSummary, outcome: StepOutcome | None) -> None:
    if outcome is None or outcome.status == "missing":
        summary.not_judged += 1
        return
    summary.spend["judgment"] += outcome.spend
    summary.from_store += outcome.cached
    if outcome.ok:
        summary.judged += 1
    else:
        summary.failed += 1


def _one_line(exc: BaseException) -> str:
    text = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"

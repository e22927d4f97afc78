"""An annotation run: judge a list of query-product pairs into the store.

First each distinct query's requirements, then its guidelines (once per query, however many pairs and engines it
has; every query's requirements before any query's guidelines), then every pair, ordered by query so that calls sharing a prompt prefix run together. Both phases run on a pool of
``workers`` threads. Each result is committed when it arrives, so a killed run loses only the calls in flight, and
rerunning the same command continues where it stopped (everything done is a store hit).

An LM error is not an answer and is never stored: a pair whose call failed (server down, rate limit after rae's
retries) is counted and left for the next run. An error that no retry can mend (a bad key, an unknown model) stops
the run at once, as does a server that cannot be reached before any call succeeded, or ten LM errors in a row. With a
spending limit, the run stops before it would pass it.
"""

import threading
import time
from collections.abc import Callable, Iterable

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

from rae.annotate.concurrency import each_concurrently
from rae.annotate.spending import Spend, SpendingLimit
from rae.annotate.steps import NO_REASONING, StepOutcome, StoredSteps
from rae.annotate.summary import AnnotationSummary
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair
from rae.errors import RaeError
from rae.lm.batched import Deferred
from rae.programs.guidelines import Guidelines
from rae.secrets import redact

FATAL_ERRORS = (LMAuthError, LMBillingError, LMConfigurationError, LMNotConfiguredError, LMUnsupportedModelError, LMUnsupportedFeatureError)
MAX_ERRORS_IN_A_ROW = 10


class AnnotationAborted(RaeError, RuntimeError):
    pass


class AnnotationRun:
    def __init__(
        self,
        steps: StoredSteps,
        catalog: Catalog,
        workers: int = 1,
        progress: bool = True,
        limit: SpendingLimit | None = None,
        order_by_query: bool = True,
        on_pair: Callable[[], None] | None = None,
    ):
        self.on_pair = on_pair  # told of each pair done (a parent process's progress bar)
        self.steps = steps
        self.catalog = catalog
        self.workers = workers
        self.progress = progress
        self.limit = limit
        self.order_by_query = order_by_query
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
        queries = list(dict.fromkeys(p.query for p in pairs))
        summary = AnnotationSummary(pairs=len(pairs), queries=len(queries))
        started = time.perf_counter()
        try:
            if self.steps.annotator.writes_guidelines:  # stage by stage: calls in a row share their system prompt
                each_concurrently(queries, self._requirements(summary), self.workers, self.progress, "requirements")
            made = each_concurrently(queries, self._guidelines(summary), self.workers, self.progress, "guidelines")
            guidelines = dict(zip(queries, made, strict=True))
            each_concurrently(pairs, self._judgment(summary, guidelines), self.workers, self.progress, "judgments", self.on_pair)
        finally:
            summary.seconds = round(time.perf_counter() - started, 2)
        if self._fatal is not None:
            raise AnnotationAborted(f"stopped: {one_line(self._fatal)} ({summary.judged + summary.failed} pairs stored)")
        if self.limit is not None and self.limit.reached:
            summary.stopped_at_budget = self.limit.limit
        return summary

    def _requirements(self, summary: AnnotationSummary) -> Callable[[str], None]:
        """A query's requirements, made before any query's guidelines: a model that keeps the prefix of its last prompt
        (the embedded one) then evaluates each stage's system prompt once, not once a query. The guidelines step finds
        them in the store."""

        def step(query: str) -> None:
            outcome = self._guarded(summary, lambda: self.steps.requirements(query))
            if outcome is not None:
                with self._lock:
                    summary.spend["requirements_guidelines"] += outcome.spend

        return step

    def _guidelines(self, summary: AnnotationSummary) -> Callable[[str], StepOutcome[Guidelines] | None]:
        """A query's guidelines step; None when an LM error kept them from being made (the run goes on without them)."""

        def step(query: str) -> StepOutcome[Guidelines] | None:
            outcome = self._guarded(summary, lambda: self.steps.guidelines(query))
            if outcome is not None:
                with self._lock:
                    summary.spend["requirements_guidelines"] += outcome.spend
                    if outcome.degenerate is not None:
                        summary.degenerate[outcome.degenerate.stage] += 1
            return outcome

        return step

    def _judgment(self, summary: AnnotationSummary, guidelines: dict[str, StepOutcome[Guidelines] | None]) -> Callable[[Pair], None]:
        def step(pair: Pair) -> None:
            made = guidelines[pair.query]
            if made is None or not made.ok:
                with self._lock:
                    if made is None or self._stopping:
                        summary.not_judged += 1
                    else:
                        summary.no_guidelines += 1
                return
            outcome = self._guarded(summary, lambda: self.steps.judgment(pair, made.value, self.catalog[pair.product_id]))
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
        except Deferred:  # waiting for a batch: neither an answer nor an error
            with self._lock:
                summary.deferred += 1
            return None
        except LMError as exc:
            with self._lock:
                summary.errors += 1
                summary.first_error = summary.first_error or one_line(exc)
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


def _count(summary: AnnotationSummary, outcome: StepOutcome | None) -> None:
    if outcome is None or outcome.status == "missing":
        summary.not_judged += 1
        return
    summary.spend["judgment"] += outcome.spend
    summary.from_store += outcome.cached
    if outcome.ok:
        summary.judged += 1
        if NO_REASONING in outcome.value.flags.split(","):
            summary.degenerate["reasoning"] += 1
    else:
        summary.failed += 1


def one_line(exc: BaseException) -> str:
    text = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]

"""An annotation run: judge a list of query-product pairs into the store.

First each distinct query's requirements, then its guidelines (once per query, however many pairs and engines it
has; every query's requirements before any query's guidelines, so calls in a row share their system prompt), then
every pair, ordered by query so that calls sharing a prompt prefix run together. The steps run on one event loop with
up to ``workers`` of them in flight; each call is committed as soon as it is answered, so a killed run loses only the
calls in flight, and rerunning the same command continues where it stopped (everything done is a store hit).

An LM error is not an answer and is never stored: a pair whose call failed (server down, rate limit after rae's
retries) is counted and left for the next run. An error that no retry can mend (a bad key, an unknown model) stops
the run at once, as does a server that cannot be reached before any call succeeded, or ten LM errors in a row. With a
budget, every call the run pays for is reserved against it first (``rae.annotate.executor``); when the budget refuses
one, the run starts no new step and ends with what it has. ``retry_failed`` first forgets the stored answers that
gave a failure (an answer that did not parse, requirements or guidelines that said nothing), so they are asked again.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

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

from rae.annotate.executor import OverBudget
from rae.annotate.judging import Judging, run_to_completion
from rae.annotate.outcome import NO_REASONING, StepOutcome, spend_of
from rae.annotate.spending import Budget
from rae.annotate.stored_lm import NotStored
from rae.annotate.summary import AnnotationSummary
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair
from rae.errors import RaeError
from rae.lm.batched import Deferred
from rae.programs.annotator import QueryGuidelines
from rae.secrets import redact
from rae.store.schema import JudgmentRow

FATAL_ERRORS = (LMAuthError, LMBillingError, LMConfigurationError, LMNotConfiguredError, LMUnsupportedModelError, LMUnsupportedFeatureError)
MAX_ERRORS_IN_A_ROW = 10
LOOKUPS_IN_FLIGHT = 64  # a lookup-only run makes no call: its steps wait only for the store
T = TypeVar("T")


class AnnotationAborted(RaeError, RuntimeError):
    pass


class AnnotationRun:
    def __init__(
        self,
        judging: Judging,
        catalog: Catalog,
        workers: int = 1,
        progress: bool = True,
        budget: Budget | None = None,
        order_by_query: bool = True,
        on_pair: Callable[[], None] | None = None,
        retry_failed: bool = False,
    ):
        self.judging = judging.within(budget.budget_id) if budget is not None and judging.allow_calls else judging
        self.catalog = catalog
        self.workers = workers
        self.progress = progress
        self.order_by_query = order_by_query
        self.on_pair = on_pair  # told of each pair done (a parent process's progress bar)
        self.retry_failed = retry_failed
        self.outcomes: dict[Pair, StepOutcome[JudgmentRow]] = {}
        self.guidelines: dict[str, StepOutcome[QueryGuidelines] | None] = {}
        self._errors_in_a_row = 0
        self._calls_answered = 0
        self._fatal: LMError | None = None
        self._over_budget = False

    def run(self, pairs: Iterable[Pair]) -> AnnotationSummary:
        """Judge the pairs: in query order (prompts that share a prefix run together), or as given (to measure that)."""
        pairs = list(dict.fromkeys(pairs))
        if self.order_by_query:
            pairs.sort(key=lambda p: (p.query, p.product_id))
        missing = sorted({p.product_id for p in pairs if p.product_id not in self.catalog})
        if missing:
            raise AnnotationAborted(f"{len(missing)} products to judge are not in the catalog, e.g. {', '.join(missing[:3])}")
        if self.retry_failed and self.judging.allow_calls:
            forget_failures(self.judging, pairs, self.catalog)
        summary = AnnotationSummary(pairs=len(pairs), queries=len({p.query for p in pairs}))
        started = time.perf_counter()
        try:
            run_to_completion(self._run(pairs, summary))
        finally:
            summary.seconds = round(time.perf_counter() - started, 2)
            self.judging.flush()
        if self._fatal is not None:
            raise AnnotationAborted(f"stopped: {one_line(self._fatal)} ({summary.judged + summary.failed} pairs stored)")
        summary.over_budget = self._over_budget
        return summary

    def query_guidelines(self, queries: list[str]) -> dict[str, StepOutcome[QueryGuidelines] | None]:
        """Only the queries' steps: each one's requirements and guidelines (None where an LM error kept them from being
        made), for work that needs the guidelines without judging (an optimizer's examples)."""
        summary = AnnotationSummary(queries=len(queries))
        try:
            run_to_completion(self._run([], summary, list(dict.fromkeys(queries))))
        finally:
            self.judging.flush()
        if self._fatal is not None:
            raise AnnotationAborted(f"stopped: {one_line(self._fatal)}")
        return self.guidelines

    async def _run(self, pairs: list[Pair], summary: AnnotationSummary, queries: list[str] | None = None) -> None:
        queries = queries if queries is not None else list(dict.fromkeys(p.query for p in pairs))
        workers = self.workers if self.judging.allow_calls else max(self.workers, LOOKUPS_IN_FLIGHT)
        with self.judging.context(), self.judging.executor.grouped_on_this_loop():
            try:
                requirement_keys: dict[str, frozenset[str]] = {}
                if self.judging.program.writes_guidelines and self.judging.allow_calls:
                    made = await each_concurrently(queries, self._requirements(summary), workers, self.progress, "requirements")
                    requirement_keys = {q: frozenset(c.key for c in o.calls) if o else frozenset() for q, o in zip(queries, made, strict=True)}
                step = self._guidelines(summary, requirement_keys)
                made = await each_concurrently(queries, step, workers, self.progress, "guidelines")
                self.guidelines = dict(zip(queries, made, strict=True))
                await each_concurrently(pairs, self._judgment(summary, self.guidelines), workers, self.progress, "judgments", self.on_pair)
            finally:
                await _closed(self.judging.sender)

    def _requirements(self, summary: AnnotationSummary) -> Callable[[str], Awaitable[StepOutcome | None]]:
        async def step(query: str) -> StepOutcome | None:
            outcome = await self._guarded(summary, "requirements_guidelines", lambda: self.judging.requirements(query))
            if outcome is not None:
                summary.spend["requirements_guidelines"] += outcome.spend
            return outcome

        return step

    def _guidelines(self, summary: AnnotationSummary, requirement_keys: dict[str, frozenset[str]]) -> Callable[[str], Awaitable[StepOutcome | None]]:
        """A query's guidelines step; None when an LM error kept them from being made (the run goes on without them)."""

        async def step(query: str) -> StepOutcome[QueryGuidelines] | None:
            outcome = await self._guarded(summary, "requirements_guidelines", lambda: self.judging.guidelines(query, requirement_keys.get(query, frozenset())))
            if outcome is not None:
                summary.spend["requirements_guidelines"] += outcome.spend
                if outcome.degenerate is not None:
                    summary.degenerate[outcome.degenerate.stage] += 1
            return outcome

        return step

    def _judgment(self, summary: AnnotationSummary, guidelines: dict[str, StepOutcome[QueryGuidelines] | None]) -> Callable[[Pair], Awaitable[None]]:
        async def step(pair: Pair) -> None:
            made = guidelines[pair.query]
            if made is None or not made.ok:
                if made is None or self._stopping or made.status == "missing":
                    summary.not_judged += 1
                else:
                    summary.no_guidelines += 1
                return
            outcome = await self._guarded(summary, "judgment", lambda: self.judging.judgment(pair, made.value, self.catalog[pair.product_id]))
            if outcome is not None:
                self.outcomes[pair] = outcome
            _count(summary, outcome)

        return step

    @property
    def _stopping(self) -> bool:
        """The run is ending early: an error no retry can mend, or the budget."""
        return self._fatal is not None or self._over_budget

    async def _guarded(self, summary: AnnotationSummary, stage: str, step: Callable[[], Awaitable[StepOutcome]]) -> StepOutcome | None:
        """Run a step; an LM error is counted (and may stop the run) instead of being raised in a worker. ``stage`` is
        where a step the budget cut short counts the calls it had paid for."""
        if self._stopping:
            return None
        try:
            outcome = await step()
        except NotStored:  # a lookup-only run: nothing stored for this step
            return StepOutcome(None, "missing")
        except OverBudget as refused:  # a call the budget could not cover was not sent: no new step starts
            self._over_budget = True
            summary.spend[stage] += spend_of(getattr(refused, "calls", []))
            return None
        except Deferred:  # waiting for a batch: neither an answer nor an error
            summary.deferred += 1
            return None
        except LMError as exc:
            summary.errors += 1
            summary.first_error = summary.first_error or one_line(exc)
            self._errors_in_a_row += 1
            never_reached = isinstance(exc, LMTransportError) and self._calls_answered == 0
            if isinstance(exc, FATAL_ERRORS) or never_reached or self._errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                self._fatal = self._fatal or exc
            return None
        self._errors_in_a_row = 0
        self._calls_answered += outcome.spend.calls
        return outcome


def replayed(judging: Judging, pairs: list[Pair], catalog: Catalog) -> dict[Pair, StepOutcome[JudgmentRow]]:
    """What the program says of each pair from the stored answers alone (``judging`` reads the store only): ``missing``
    where an answer is not stored, ``no_guidelines`` where its query's guidelines failed."""
    run = AnnotationRun(judging, catalog, progress=False)
    known = [p for p in dict.fromkeys(pairs) if p.product_id in catalog]
    run.run(known)
    return {pair: run.outcomes.get(pair, StepOutcome(None, "missing")) for pair in dict.fromkeys(pairs)}


def forget_failures(judging: Judging, pairs: list[Pair], catalog: Catalog) -> int:
    """Forget the stored answers that gave a failure: a judgment that did not parse, and requirements or guidelines
    that did not parse or said nothing. The next run asks for them again. How many answers were forgotten."""
    lookup = judging.lookup()
    failed: list[str] = []

    async def collect() -> None:
        queries = list(dict.fromkeys(p.query for p in pairs))
        with lookup.context():
            for query in queries:
                requirements = await _quietly(lookup.requirements(query)) if lookup.program.writes_guidelines else None
                done = frozenset(c.key for c in requirements.calls) if requirements else frozenset()
                if requirements is not None and requirements.status in ("failed", "degenerate"):
                    failed.extend(done)
                guidelines = await _quietly(lookup.guidelines(query, done))
                if guidelines is not None and (guidelines.status == "failed" or guidelines.degenerate is not None):
                    failed.extend(c.key for c in guidelines.calls if c.key not in done)

    run_to_completion(collect())
    failed.extend(c.key for outcome in replayed(lookup, pairs, catalog).values() if outcome.status == "failed" for c in outcome.calls)
    return judging.store.forget_answers(list(dict.fromkeys(failed)))


async def each_concurrently(
    items: list, step: Callable[[Any], Awaitable[T]], workers: int, progress: bool, what: str, on_done: Callable[[], None] | None = None
) -> list[T]:
    """``step`` over ``items``, at most ``workers`` at a time on this event loop; results in input order. ``on_done``
    is told of each item done (a parent process's progress bar, say)."""
    results: list[Any] = [None] * len(items)
    pending = iter(enumerate(items))
    with tqdm(total=len(items), desc=what, unit=what.rstrip("s"), disable=not progress, leave=False) as bar:

        async def worker() -> None:
            for index, item in pending:
                results[index] = await step(item)
                bar.update()
                if on_done is not None:
                    on_done()

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(workers, len(items)))):
                group.create_task(worker())
    return results


async def _quietly(step: Awaitable[StepOutcome]) -> StepOutcome | None:
    try:
        return await step
    except LMError:
        return None


async def _closed(sender: Any) -> None:
    """Let go of what the sender holds on this event loop (an HTTP client belongs to the loop that made it)."""
    close = getattr(sender, "aclose", None)
    if close is not None:
        await close()


def _count(summary: AnnotationSummary, outcome: StepOutcome | None) -> None:
    if outcome is None or outcome.status == "missing":
        summary.not_judged += 1
        return
    if outcome.status == "no_guidelines":
        summary.no_guidelines += 1
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

"""Retries of transient LM errors: rate limits (429), server errors (5xx), timeouts, dropped connections.

rae retries, not DSPy (whose LMs rae builds with ``num_retries=0``): DSPy waits a fixed 2^n seconds, so after a burst
of 429s every worker comes back at the same instant. Here each wait is drawn at random up to the exponential bound
("full jitter"), and a server's Retry-After is honoured, with a little jitter on top. Each retry is counted.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dspy import lm15
from dspy.utils.exceptions import LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError

from rae.lm.limits import RateLimiter

# DSPy's errors (from its own engines) and lm15's (from rae's engines), for the same four kinds of trouble.
RETRYABLE = (LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError, lm15.RateLimitError, lm15.ServerError, lm15.TimeoutError,
             lm15.TransportError)
TIMEOUTS = (LMTimeoutError, lm15.TimeoutError)  # a call that timed out may have been billed


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    base_s: float = 0.5
    cap_s: float = 60.0

    def delay(self, retry: int, error: BaseException, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        draw = (rng or random).uniform
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            return min(float(retry_after), self.cap_s) + draw(0, self.base_s)
        return draw(0, min(self.cap_s, self.base_s * 2 ** (retry - 1)))


@dataclass
class CallPolicy:
    """How calls to one model are paced and retried: one per model, shared by every call to it. ``sleep`` and
    ``asleep`` wait between retries (a test records the waits instead)."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    sleep: Callable[[float], None] = time.sleep
    asleep: Callable[[float], Awaitable[None]] = asyncio.sleep


class Retries:
    """The retries of one call: ``wait(error)`` says how long to wait before the next try, or raises the error when
    the retries are spent."""

    def __init__(self, policy: RetryPolicy):
        self.policy, self.count = policy, 0

    def wait(self, error: BaseException) -> float:
        self.count += 1
        if self.count > self.policy.max_retries:
            raise error
        return self.policy.delay(self.count, error)

"""Retries of transient LM errors: rate limits (429), server errors (5xx), timeouts, dropped connections.

rae retries, not DSPy (whose LMs rae builds with ``num_retries=0``): DSPy waits a fixed 2^n seconds, so after a burst
of 429s every worker comes back at the same instant. Here each wait is drawn at random up to the exponential bound
("full jitter"), and a server's Retry-After is honoured, with a little jitter on top. Each retry is counted.
"""

import random
from dataclasses import dataclass

from dspy.utils.exceptions import LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError

RETRYABLE = (LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError)


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

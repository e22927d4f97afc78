"""Requests and tokens per minute for one model, shared by every worker that calls it.

Two buckets that refill continuously: a request takes one request slot before it is sent, and the tokens it used are
charged when it returns (they are known only then). While either bucket is empty, or the token bucket is in debt,
workers wait. So a run keeps under a provider's limits instead of collecting 429s.
"""

import asyncio
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.rpm, self.tpm = requests_per_minute, tokens_per_minute
        self.clock, self.sleep = clock, sleep
        self.requests = float(requests_per_minute or 0)
        self.tokens = float(tokens_per_minute or 0)
        self.updated = clock()
        self.lock = threading.Lock()
        self.waited_s = 0.0

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.tpm)

    def acquire(self) -> None:
        """Wait until one more request may be sent, and take its slot."""
        while (wait := self.take()) > 0:
            self.sleep(wait)

    async def aacquire(self) -> None:
        """``acquire`` on an event loop."""
        while (wait := self.take()) > 0:
            await asyncio.sleep(wait)

    def take(self) -> float:
        """Take a request's slot if there is one now (0.0), or say how long to wait before asking again."""
        if not self.limited:
            return 0.0
        with self.lock:
            self._refill()
            requests_ok = not self.rpm or self.requests >= 1
            tokens_ok = not self.tpm or self.tokens > 0
            if requests_ok and tokens_ok:
                if self.rpm:
                    self.requests -= 1
                return 0.0
            wait = max(
                (1 - self.requests) * 60 / self.rpm if self.rpm and not requests_ok else 0.0,
                -self.tokens * 60 / self.tpm + 0.001 if self.tpm and not tokens_ok else 0.0,
            )
            self.waited_s += wait
            return wait

    def spend(self, tokens: int) -> None:
        """Charge the tokens a call used."""
        if self.tpm and tokens:
            with self.lock:
                self._refill()
                self.tokens -= tokens

    def _refill(self) -> None:
        now = self.clock()
        elapsed = now - self.updated
        self.updated = now
        if self.rpm:
            self.requests = min(float(self.rpm), self.requests + elapsed * self.rpm / 60)
        if self.tpm:
            self.tokens = min(float(self.tpm), self.tokens + elapsed * self.tpm / 60)

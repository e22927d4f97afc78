"""What LM calls cost, and a spending limit that stops a run cleanly before it passes a budget.

``Spend`` adds up calls, tokens, dollars, seconds and retries; a result served from the store spends nothing.

Workers run calls concurrently, so checking the money already spent is not enough to keep a budget: before each step
a worker reserves the expected cost of a call, and the reservation is settled with what the step really cost
(nothing, for a store hit). A step that would push spent plus reserved past the limit is not started; the run ends
with what it has, and the same command, rerun with more budget, continues from the store.
"""

import threading
from dataclasses import dataclass


@dataclass
class Spend:
    """What the LM calls behind a result cost: nothing when it came from the store. ``cost_usd`` None: price unknown."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0
    retries: int = 0

    def __add__(self, other: "Spend") -> "Spend":
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 8)
        return Spend(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            cost,
            round(self.seconds + other.seconds, 4),
            self.retries + other.retries,
        )


class SpendingLimit:
    def __init__(self, limit_usd: float, expected_call_usd: float):
        self.limit = limit_usd
        self.expected = max(expected_call_usd, 0.0)
        self.spent = 0.0
        self.reserved = 0.0
        self.calls = 0
        self.lock = threading.Lock()
        self.reached = False

    def reserve(self) -> float | None:
        """The amount reserved for one more step, or None if it might pass the limit."""
        with self.lock:
            amount = max(self.expected, self.spent / self.calls if self.calls else 0.0)
            if self.reached or self.spent + self.reserved + amount > self.limit:
                self.reached = True
                return None
            self.reserved += amount
            return amount

    def settle(self, reserved: float, cost_usd: float | None, calls: int) -> None:
        with self.lock:
            self.reserved -= reserved
            self.spent += cost_usd or 0.0
            self.calls += calls

"""The most a call can cost, reserved against the run's budget before it is sent (``rae.store.ledger``).

A reservation must never be less than what the call turns out to cost, or the ledger could pass the limit. So it is
the call's most possible cost, not a guess: every byte of the rendered request's text counted as a token (a
byte-level tokenizer makes at most one token a byte, and tokenizers that are not byte-level make fewer), plus the
few tokens a chat template adds to each message, a fixed allowance for an image, and the output at most its
``max_tokens``, all at the model's price (the batch price for a batch). Reserving more than a call costs only means
the last calls of a budget are refused a little early; the reservation is settled with the real cost as soon as the
answer is stored.
"""

import dataclasses
import json
from dataclasses import dataclass

from dspy.lm15 import Request

from rae.config import ModelPrice
from rae.store.ledger import Reservation

TEMPLATE_TOKENS_PER_MESSAGE = 16
IMAGE_TOKENS = 3000  # above what OpenAI (1,105 at high detail), Anthropic (about 1,600) and Gemini (258) charge an image


@dataclass(frozen=True)
class CallGate:
    """A run's budget (its ledger's id) and the price its calls are reserved at."""

    budget_id: str
    price: ModelPrice
    max_tokens: int  # the model's, for a request that sets none

    def reservation(self, request: Request) -> Reservation | None:
        """What to hold before sending ``request``: None for a free model (nothing can pass the limit)."""
        amount = most_cost(request, self.price, self.max_tokens)
        return Reservation(self.budget_id, amount) if amount > 0 else None


def most_cost(request: Request, price: ModelPrice, default_max_tokens: int) -> float:
    output = request.config.max_tokens or default_max_tokens
    return (input_bound(request) * price.input_per_million + output * price.output_per_million) / 1e6


def input_bound(request: Request) -> int:
    """At least as many tokens as the request's input can be, whatever the tokenizer."""
    system = request.system if isinstance(request.system, str) else "".join(getattr(p, "text", "") or "" for p in request.system or ())
    tokens = len((system or "").encode()) + TEMPLATE_TOKENS_PER_MESSAGE
    if request.tools:
        tokens += len(json.dumps([dataclasses.asdict(t) if dataclasses.is_dataclass(t) else t for t in request.tools], default=str).encode())
    for message in request.messages:
        tokens += TEMPLATE_TOKENS_PER_MESSAGE
        for part in message.parts:
            text = getattr(part, "text", None)
            tokens += len(text.encode()) if text is not None else IMAGE_TOKENS
    return tokens

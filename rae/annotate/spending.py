"""What LM calls cost, and the run's budget: a spending limit held in the store, by construction.

``Spend`` adds up calls, tokens, dollars, seconds and retries; a result served from the store spends nothing, and a
cost that is unknown stays unknown (None) in every sum.

``Budget`` is a run's limit (``--budget``). It is a ledger in the store (``rae.store.ledger``), opened once by the
command and named by its id to every process and Ray task of the run: each call reserves its most possible cost there
before it is sent, in the transaction that claims its key, and settles after (``rae.annotate.executor``), so however
many calls a step makes and wherever it runs, what the ledger counts as spent never passes the limit. A model whose
price is unknown cannot have a budget: the run is refused before it starts.
"""

from dataclasses import dataclass

from rae.config import ConfigError
from rae.lm.factory import ModelHandle
from rae.store.budgets import budget_row
from rae.store.budgets import open_budget as new_ledger
from rae.store.store import Store


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


@dataclass(frozen=True)
class Budget:
    """A run's spending limit: its ledger's id in the store, and the limit."""

    budget_id: str
    limit_usd: float


@dataclass(frozen=True)
class BudgetState:
    """The ledger as of now: what was spent, what is held by calls in flight (or by a process that died), and how many
    calls it refused."""

    limit_usd: float
    spent_usd: float
    reserved_usd: float
    refused: int

    @property
    def stopped(self) -> bool:
        """Whether the budget stopped the run: it refused a call."""
        return self.refused > 0

    def line(self) -> str:
        spent = f"${self.spent_usd:.4f} spent of the budget of ${self.limit_usd:.4f}"
        if self.stopped:
            return f"{spent}; the budget stopped the run ({self.refused} calls it could not cover not sent); rerun with more to continue"
        return spent


def open_budget(store: Store, models: list[ModelHandle], limit_usd: float) -> Budget:
    """A new ledger for a run whose calls go to ``models``; refused at once when one of them has no price."""
    for model in models:
        if model.price is None:
            name = model.spec.name
            raise ConfigError(f'--budget needs a price for {name}: LiteLLM has none; add [prices."{name}"] to the config')
    return Budget(new_ledger(store, limit_usd), limit_usd)


def budget_state(store: Store, budget: Budget) -> BudgetState:
    row = budget_row(store, budget.budget_id)
    return BudgetState(budget.limit_usd, round(row.spent_usd, 8), round(max(row.reserved_usd, 0.0), 8), row.refused)

"""Typed records that flow between rae's steps: products, human judgments, query-product pairs."""

from dataclasses import dataclass
from datetime import datetime

from rae.labels import Label


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    title: str
    brand: str = ""
    color: str = ""
    category: tuple[str, ...] = ()
    bullets: str = ""
    description: str = ""
    image: str | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class HumanJudgment:
    """One human label for a query-product pair; ``original_label`` keeps the source's own vocabulary (ESCI's E/S/C/I)."""

    query_id: str
    query: str
    product_id: str
    label: Label
    original_label: str

    @property
    def pair(self) -> "Pair":
        return Pair(self.query_id, self.query, self.product_id)


@dataclass(frozen=True, slots=True)
class Pair:
    """A query-product pair to be judged."""

    query_id: str
    query: str
    product_id: str


@dataclass(frozen=True, slots=True)
class Query:
    query_id: str
    text: str
    frequency: int = 1
    stratum: str = ""


@dataclass(frozen=True, slots=True)
class ReviewLabel:
    """A reviewer's latest label for a pair, as the review page saved it."""

    query_id: str
    query: str
    product_id: str
    label: Label
    reviewer: str
    note: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RaterLabel:
    """One rater's label for a pair, as a judgment file carries it: a human's, or another LLM judge's."""

    query_id: str
    query: str
    product_id: str
    label: Label
    rater: str
    explanation: str = ""

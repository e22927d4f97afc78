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
class Rating:
    """One label for a query-product pair, wherever it came from: a labelled set, a judgment file, a reviewer, a judge.

    ``rater`` says who gave it (a reviewer's name, a file's rater, a judge's model; empty for a labelled set's own
    labels), ``original_label`` keeps the source's own vocabulary (ESCI's E/S/C/I), ``note`` is the rater's own words
    (a reviewer's note, a judge's reasoning), and ``created_at`` is when a review saved it.
    """

    query_id: str
    query: str
    product_id: str
    label: Label
    rater: str = ""
    original_label: str = ""
    note: str = ""
    created_at: datetime | None = None

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
    reference_answer: str = ""  # a query set's expected answer (SRW's referenceAnswer), carried through unchanged

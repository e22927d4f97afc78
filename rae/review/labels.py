"""Human labels from reviews: saved at once, every reviewer kept, and joined to the labelled set as a new version.

A pair's label from a reviewer is their latest one. In the labelled set with reviews, the original labels stay as
they were; pairs that only reviewers labelled join it, labelled by the reviewers' majority (the latest label on a
tie). The set's fingerprint covers the reviews, so an artifact compiled on it, or an agreement measured on it, says
which labels it saw. Where several humans labelled one pair (an original label and a reviewer, or two reviewers),
that is inter-annotator data: ``human_pairs`` gives it to the agreement report.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from rae.datasets.labelled_set import LabelledSet
from rae.datasets.records import HumanJudgment
from rae.labels import Label
from rae.store.schema import HumanLabelRow
from rae.store.store import Store


@dataclass(frozen=True)
class ReviewLabel:
    query_id: str
    query: str
    product_id: str
    label: Label
    reviewer: str
    note: str
    created_at: datetime


def save_label(store: Store, query_id: str, query: str, product_id: str, label: Label, reviewer: str, note: str = "", item_id: int | None = None) -> None:
    with store.session() as session, session.begin():
        session.add(
            HumanLabelRow(query_id=query_id, query=query, product_id=product_id, label=str(label), reviewer=reviewer, note=note, item_id=item_id)
        )


def latest_reviews(store: Store) -> list[ReviewLabel]:
    """Each reviewer's latest label for each pair."""
    with store.session() as session:
        rows = session.scalars(select(HumanLabelRow).order_by(HumanLabelRow.created_at, HumanLabelRow.id)).all()
    latest: dict[tuple[str, str, str], HumanLabelRow] = {}
    for row in rows:
        latest[(row.query_id, row.product_id, row.reviewer)] = row
    return [
        ReviewLabel(r.query_id, r.query, r.product_id, Label(r.label), r.reviewer, r.note, r.created_at) for r in latest.values()
    ]


def with_reviews(labelled: LabelledSet, reviews: list[ReviewLabel]) -> LabelledSet:
    """The labelled set with the pairs that only reviewers labelled: a new version, with its own fingerprint."""
    known = {(j.query_id, j.product_id) for j in labelled.judgments}
    by_pair: dict[tuple[str, str], list[ReviewLabel]] = {}
    for review in reviews:
        if (review.query_id, review.product_id) not in known and review.product_id in labelled.catalog:
            by_pair.setdefault((review.query_id, review.product_id), []).append(review)
    added = []
    for (query_id, product_id), pair_reviews in sorted(by_pair.items()):
        counts = Counter(r.label for r in pair_reviews)
        top = max(counts.values())
        winner = max((r for r in pair_reviews if counts[r.label] == top), key=lambda r: r.created_at).label
        reviewers = ",".join(sorted({r.reviewer for r in pair_reviews}))
        added.append(HumanJudgment(query_id, pair_reviews[0].query, product_id, winner, f"review:{reviewers}"))
    if not added:
        return labelled
    return LabelledSet.build(f"{labelled.name}+reviews", labelled.judgments + added, labelled.catalog, dict(labelled.splits))


def human_pairs(labelled: LabelledSet, reviews: list[ReviewLabel]) -> dict[tuple[str, str], dict[str, Label]]:
    """Every pair with two or more human labels: rater -> label ("original" for the labelled set's own label)."""
    raters: dict[tuple[str, str], dict[str, Label]] = {}
    for judgment in labelled.judgments:
        raters.setdefault((judgment.query_id, judgment.product_id), {})["original"] = judgment.label
    for review in reviews:
        raters.setdefault((review.query_id, review.product_id), {})[review.reviewer] = review.label
    return {pair: by_rater for pair, by_rater in raters.items() if len(by_rater) >= 2}

"""A human-labelled set: the judgments, the catalog their products come from, and the split of its queries."""

import hashlib
from collections import Counter
from dataclasses import dataclass

from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair, Query, Rating
from rae.datasets.splits import assign_splits, check_split_name
from rae.errors import RaeError


class IncompleteCatalogError(RaeError, ValueError):
    pass


@dataclass
class LabelledSet:
    name: str
    judgments: list[Rating]
    catalog: Catalog
    splits: dict[str, str]

    @classmethod
    def build(
        cls, name: str, judgments: list[Rating], catalog: Catalog, splits: dict[str, str] | None = None
    ) -> "LabelledSet":
        """Check that every judged product is in the catalog and give each query a split (seeded rule by default)."""
        missing = sorted({j.product_id for j in judgments} - set(catalog))
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise IncompleteCatalogError(f"{len(missing)} labelled products are not in the catalog: {shown}")
        query_ids = {j.query_id for j in judgments}
        assignment = splits if splits is not None else assign_splits(query_ids)
        unassigned = query_ids - set(assignment)
        if unassigned:
            assignment = {**assignment, **assign_splits(unassigned)}
        return cls(name=name, judgments=judgments, catalog=catalog, splits=assignment)

    def select(self, split: str = "all", queries: int | None = None, per_query: int | None = None) -> list[Rating]:
        """The judgments of a split; optionally only its first ``queries`` queries (by id) and ``per_query`` pairs each.

        The pairs kept per query are a fixed pseudo-random sample (by a hash of the pair), not the file's order,
        so that a small slice still mixes labels.
        """
        check_split_name(split)
        chosen = [j for j in self.judgments if split == "all" or self.splits[j.query_id] == split]
        if queries is not None:
            keep = set(sorted({j.query_id for j in chosen})[:queries])
            chosen = [j for j in chosen if j.query_id in keep]
        if per_query is not None:
            chosen = _sample_per_query(chosen, per_query)
        return sorted(chosen, key=lambda j: (j.query_id, j.product_id))

    def pairs(self, split: str = "all", queries: int | None = None, per_query: int | None = None) -> list[Pair]:
        return [j.pair for j in self.select(split, queries, per_query)]

    def queries(self, split: str = "all", queries: int | None = None) -> list[Query]:
        """The distinct queries of a split, by id; the first ``queries`` of them if given."""
        texts = {j.query_id: j.query for j in self.select(split, queries)}
        return [Query(query_id, text, stratum=f"labelled:{self.splits[query_id]}") for query_id, text in sorted(texts.items())]

    def fingerprint(self) -> str:
        """A hash of the labels and of the split: two runs on the same fingerprint saw the same human labels."""
        digest = hashlib.sha256()
        for j in sorted(self.judgments, key=lambda j: (j.query_id, j.product_id)):
            digest.update(f"{j.query_id}\t{j.product_id}\t{j.label}\t{self.splits[j.query_id]}\n".encode())
        return digest.hexdigest()[:16]


def with_reviews(labelled: LabelledSet, reviews: list[Rating]) -> LabelledSet:
    """The labelled set with the pairs that only reviewers labelled: a new version, with its own fingerprint.

    The original labels stay as they were. A pair that only reviewers labelled is labelled by their majority (the
    latest label on a tie). The fingerprint covers the added labels, so an artifact compiled on this version, or an
    agreement measured on it, says which labels it saw.
    """
    known = {(j.query_id, j.product_id) for j in labelled.judgments}
    by_pair: dict[tuple[str, str], list[Rating]] = {}
    for review in reviews:
        if (review.query_id, review.product_id) not in known and review.product_id in labelled.catalog:
            by_pair.setdefault((review.query_id, review.product_id), []).append(review)
    added = []
    for (query_id, product_id), pair_reviews in sorted(by_pair.items()):
        counts = Counter(r.label for r in pair_reviews)
        top = max(counts.values())
        winner = max((r for r in pair_reviews if counts[r.label] == top), key=lambda r: r.created_at).label
        reviewers = ",".join(sorted({r.rater for r in pair_reviews}))
        added.append(Rating(query_id, pair_reviews[0].query, product_id, winner, rater=reviewers, original_label=f"review:{reviewers}"))
    if not added:
        return labelled
    return LabelledSet.build(f"{labelled.name}+reviews", labelled.judgments + added, labelled.catalog, dict(labelled.splits))


def _sample_per_query(judgments: list[Rating], per_query: int) -> list[Rating]:
    def order(j: Rating) -> str:
        return hashlib.sha256(f"{j.query_id}:{j.product_id}".encode()).hexdigest()

    by_query: dict[str, list[Rating]] = {}
    for judgment in sorted(judgments, key=order):
        by_query.setdefault(judgment.query_id, []).append(judgment)
    return [j for group in by_query.values() for j in group[:per_query]]

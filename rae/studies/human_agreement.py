"""Agreement among humans, where two or more labelled the same pairs: the yardstick for the judge.

The paper's humans agreed with each other about 82% of the time; a judge is as good as a human when it agrees with
them as often as they agree with each other. Raters are the labelled set's own label (``original``) and each reviewer
of the review page.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.datasets.labelled_set import LabelledSet
from rae.datasets.records import Rating
from rae.labels import Label
from rae.studies.agreement import agreement_metrics, krippendorff_alpha

MIN_SHARED_PAIRS = 5


@dataclass
class RaterPair:
    raters: tuple[str, str]
    pairs: int
    accuracy: float
    kappa: float


@dataclass
class RaterAgreement:
    title: str  # who the raters are: "Human vs human", "All raters"
    pairs_with_two_or_more_labels: int
    raters: list[str]
    alpha: float
    rater_pairs: list[RaterPair] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "pairs_with_two_or_more_labels": self.pairs_with_two_or_more_labels,
            "raters": self.raters,
            "alpha": self.alpha,
            "rater_pairs": [{**vars(p), "raters": list(p.raters)} for p in self.rater_pairs],
        }

    def markdown(self) -> str:
        if not self.pairs_with_two_or_more_labels:
            return f"{self.title}: no pair has been labelled by two or more raters yet (`rae review serve`, `rae judgments import`)."
        lines = [
            f"{self.title}: {self.pairs_with_two_or_more_labels} pairs labelled by two or more; "
            f"Krippendorff's alpha {self.alpha:.3f}"
        ]
        for pair in self.rater_pairs:
            lines.append(f"- {pair.raters[0]} vs {pair.raters[1]}: {pair.pairs} pairs, accuracy {pair.accuracy:.3f}, kappa {pair.kappa:.3f}")
        return "\n".join(lines)


def human_pairs(labelled: LabelledSet, reviews: list[Rating]) -> dict[tuple[str, str], dict[str, Label]]:
    """Every pair with two or more human labels: rater -> label ("original" for the labelled set's own label)."""
    return {pair: by_rater for pair, by_rater in human_labels(labelled, reviews).items() if len(by_rater) >= 2}


def human_labels(labelled: LabelledSet, reviews: list[Rating]) -> dict[tuple[str, str], dict[str, Label]]:
    """Every human-labelled pair: rater -> label ("original" for the labelled set's own label)."""
    raters: dict[tuple[str, str], dict[str, Label]] = {}
    for judgment in labelled.judgments:
        raters.setdefault((judgment.query_id, judgment.product_id), {})["original"] = judgment.label
    for review in reviews:
        raters.setdefault((review.query_id, review.product_id), {})[review.rater] = review.label
    return raters


def click_agreement(labelled: LabelledSet, reviews: list[Rating], clicks: list[Rating]) -> RaterAgreement:
    """How the click judgments agree with every human rater, on the pairs both labelled (whatever the split: clicks
    fall where users searched, not where the labelled set's split puts a query)."""
    humans = human_labels(labelled, reviews)
    clicked = {(r.query_id, r.product_id): r.label for r in clicks}
    both = {pair: {**by_rater, "clicks": clicked[pair]} for pair, by_rater in humans.items() if pair in clicked}
    return rater_agreement(both, "Clicks and humans")


def rater_agreement(raters: dict[tuple[str, str], dict[str, Label]], title: str = "Human vs human", min_pairs: int = MIN_SHARED_PAIRS) -> RaterAgreement:
    """Krippendorff's alpha over all raters, and accuracy and Cohen's kappa for each two raters who share at least
    ``min_pairs`` pairs."""
    names = sorted({rater for by_rater in raters.values() for rater in by_rater})
    matrix = np.full((len(names), len(raters)), np.nan)
    for column, by_rater in enumerate(raters.values()):
        for rater, label in by_rater.items():
            matrix[names.index(rater), column] = label.gain
    alpha = krippendorff_alpha(matrix) if raters and len(names) >= 2 else float("nan")
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = [(r[a].gain, r[b].gain) for r in raters.values() if a in r and b in r]
            if len(shared) < min_pairs:
                continue
            values = agreement_metrics(np.array([x for x, _ in shared]), np.array([y for _, y in shared]))
            pairs.append(RaterPair((a, b), len(shared), round(float(values[0]), 4), round(float(values[1]), 4)))
    return RaterAgreement(title, len(raters), names, round(alpha, 4), pairs)

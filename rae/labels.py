"""The three relevance labels rae judges with, and how other label sets map onto them.

The labels follow the paper's scale. Every other part of rae (the judge's output type, the gains of the IR
metrics, the agreement tables) reads them from here, so that the scale is defined once.
"""

from collections.abc import Mapping
from enum import StrEnum

from rae.errors import RaeError


class Label(StrEnum):
    IRRELEVANT = "irrelevant"
    ACCEPTABLE_SUBSTITUTE = "acceptable_substitute"
    HIGHLY_RELEVANT = "highly_relevant"

    @property
    def gain(self) -> int:
        """Graded gain for nDCG: 0, 1, 2, in the order of the scale."""
        return LABELS.index(self)


LABELS: tuple[Label, ...] = (Label.IRRELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.HIGHLY_RELEVANT)

# The two ends of the scale. A judge and a human who put one pair at opposite ends disagree hard: these are the cases
# the agreement report lists, the review queue shows first and the error analysis reads first.
HARD = frozenset({Label.IRRELEVANT, Label.HIGHLY_RELEVANT})


def is_hard_disagreement(a: Label, b: Label) -> bool:
    return {a, b} == HARD

# ESCI (Amazon Shopping Queries): Exact, Substitute, Complement, Irrelevant. A complement does not answer the
# query, so it maps to irrelevant; the original letter is kept beside the mapped label so another mapping stays
# possible.
ESCI_MAPPING: Mapping[str, Label] = {
    "E": Label.HIGHLY_RELEVANT,
    "S": Label.ACCEPTABLE_SUBSTITUTE,
    "C": Label.IRRELEVANT,
    "I": Label.IRRELEVANT,
}


class UnknownLabelError(RaeError, ValueError):
    pass


def to_label(raw: str, mapping: Mapping[str, Label] = ESCI_MAPPING) -> Label:
    """Read a label written either in the mapping's vocabulary (say ESCI letters) or as one of rae's labels."""
    text = str(raw).strip()
    if text in mapping:
        return mapping[text]
    try:
        return Label(text)
    except ValueError:
        known = ", ".join([*mapping, *LABELS])
        raise UnknownLabelError(f"unknown label {text!r} (expected one of {known})") from None


def parse_mapping(spec: Mapping[str, str]) -> dict[str, Label]:
    """A label mapping from configuration, e.g. ``{"E": "highly_relevant", "S": "irrelevant", ...}``."""
    mapping = {}
    for source, target in spec.items():
        try:
            mapping[str(source)] = Label(target)
        except ValueError:
            raise UnknownLabelError(
                f"label mapping sends {source!r} to {target!r}, which is not one of {', '.join(LABELS)}"
            ) from None
    return mapping

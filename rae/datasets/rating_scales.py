"""Rating scales of other tools, mapped onto rae's three labels and back.

Each scale is a declared mapping, not a guess: which ratings mean irrelevant, acceptable substitute or highly
relevant when a file is read, and which rating each label is written as. The defaults:

| scale | reads | writes | used by |
| --- | --- | --- | --- |
| ``0-2`` | 0 irrelevant, 1 acceptable substitute, 2 highly relevant | the same | TREC qrels (rae's own gains) |
| ``0-3`` | 0 irrelevant, 1 acceptable substitute, 2 and 3 highly relevant | 0, 1, 3 | Quepid's graded scale ("Not Relevant" .. "Highly Relevant") |
| ``0-1`` | 0 irrelevant, 1 highly relevant | 0, 1, 1 (a substitute is relevant: the middle label is lost) | Quepid's binary scale |
| ``unit`` | below 1/3 irrelevant, below 2/3 acceptable substitute, else highly relevant | 0.0, 0.5, 1.0 | OpenSearch SRW (ratings between 0 and 1) |
| ``percent`` | the same on 0 to 100 | 0, 50, 100 | SRW imports on a 0-100 scale |

A team's own scale is a ``[rating_scales.<name>]`` table in the settings: ``reads`` maps each rating to a label,
``writes`` maps each label to the rating written.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from rae.errors import RaeError
from rae.labels import LABELS, Label


class RatingError(RaeError, ValueError):
    pass


@dataclass(frozen=True)
class RatingScale:
    name: str
    reads: Mapping[str, Label] | None  # a discrete scale: each rating (as text) -> label
    writes: Mapping[Label, float]
    top: float | None = None  # a continuous scale from 0 to ``top``, cut in thirds

    def label(self, rating: object) -> Label:
        """The label a rating stands for; a rating this scale does not have is an error, never a guess."""
        try:
            value = float(str(rating).strip())
        except ValueError:
            raise RatingError(f"rating {rating!r} is not a number (scale {self.name})") from None
        if self.reads is None:
            if not 0 <= value <= self.top:
                raise RatingError(f"rating {rating} is outside the scale {self.name} (0 to {self.top:g}); choose another --scale")
            share = value / self.top
            return LABELS[0] if share < 1 / 3 else LABELS[1] if share < 2 / 3 else LABELS[2]
        key = f"{value:g}"
        if key not in self.reads:
            raise RatingError(f"rating {rating} is not on the scale {self.name} ({', '.join(self.reads)}); choose another --scale")
        return self.reads[key]

    def rating(self, label: Label) -> float:
        return self.writes[label]


I, S, E = LABELS  # noqa: E741 - the ESCI letters: irrelevant, substitute, exact
SCALES: dict[str, RatingScale] = {
    "0-2": RatingScale("0-2", {"0": I, "1": S, "2": E}, {I: 0, S: 1, E: 2}),
    "0-3": RatingScale("0-3", {"0": I, "1": S, "2": E, "3": E}, {I: 0, S: 1, E: 3}),
    "0-1": RatingScale("0-1", {"0": I, "1": E}, {I: 0, S: 1, E: 1}),
    "unit": RatingScale("unit", None, {I: 0.0, S: 0.5, E: 1.0}, top=1.0),
    "percent": RatingScale("percent", None, {I: 0, S: 50, E: 100}, top=100.0),
}


def rating_scale(name: str, custom: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> RatingScale:
    """A named scale: one of ``SCALES``, or a team's own from the settings."""
    if custom and name in custom:
        spec = custom[name]
        try:
            reads = {f"{float(r):g}": Label(label) for r, label in spec["reads"].items()}
            writes = {Label(label): float(r) for label, r in spec["writes"].items()}
        except (KeyError, ValueError) as exc:
            raise RatingError(f"rating scale {name}: needs reads (rating = label) and writes (label = rating): {exc}") from None
        return RatingScale(name, reads, writes)
    if name not in SCALES:
        raise RatingError(f"unknown rating scale {name!r} (known: {', '.join([*SCALES, *(custom or {})])})")
    return SCALES[name]


def scale_for_values(values: list[int | float]) -> RatingScale:
    """The scale a Quepid book declares (its ``scale``: the list of ratings a judge may give)."""
    top = max(values) if values else 3
    return SCALES["0-1"] if top <= 1 else SCALES["0-2"] if top == 2 else SCALES["0-3"]

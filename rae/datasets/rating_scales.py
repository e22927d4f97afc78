"""Rating scales of other tools, mapped onto rae's three labels and back, never guessed.

A scale is a declared mapping: which ratings mean irrelevant, acceptable substitute or highly relevant when a file
is read, and which rating each label is written as. rae knows the peers' scales by name:

| scale | reads | writes | used by |
| --- | --- | --- | --- |
| ``0-2`` | 0 irrelevant, 1 acceptable substitute, 2 highly relevant | the same | TREC qrels (rae's own gains) |
| ``0-3`` | 0 irrelevant, 1 acceptable substitute, 2 and 3 highly relevant | 0, 1, 3 | Quepid's graded scorers (nDCG@10, DCG@10, CG@10, ERR@10) |
| ``0-1`` | 0 irrelevant, 1 highly relevant | 0, 1, 1 (a substitute is relevant: the middle label is lost) | Quepid's binary scorers (P@10, AP@10, RR@10) |
| ``srw-esci`` | 100 highly relevant, 10 acceptable substitute, 1 and 0 irrelevant | 100, 10, 0 | SRW's ESCI judgments (E, S, C, I; a complement is irrelevant, as rae reads ESCI) |
| ``unit`` | cut in thirds: below 1/3 irrelevant, below 2/3 acceptable substitute, else highly relevant | 0.0, 0.5, 1.0 | SRW's own judgments (0 to 1) |
| ``percent`` | the same on 0 to 100 | 0, 50, 100 | SRW imports on a 0-100 scale |
| ``<low>-<high>`` (say ``1-5``) | integers cut in thirds, as above | low, middle, high | a custom Quepid scale, when named |
| ``thresholds:<a>,<b>`` | below a irrelevant, below b acceptable substitute, else highly relevant | 0, a, b | scores without a bound (click models' COEC) |

Quepid's scorer names (``nDCG@10``, ``P@10``, ...) name their scales too. A team's own scale is a
``[rating_scales.<name>]`` table in the settings: ``reads`` maps each rating to a label, ``writes`` each label to a rating.

Cutting in thirds is the one mapping that could move a rating into another class (SRW's ESCI 10, a substitute, is
in the first tenth of 0 to 100): ``check_ratings`` refuses it when the file's distinct ratings would not keep a
label each (or, for a continuous rating, when they fill less than half the scale: click scores of 0 to 5 read on
0-100 would all be irrelevant), and says what it would have read each rating as and which scales fit the file. A
file no named scale fits is asked for a range or thresholds, its distinct ratings shown.
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rae.errors import RaeError
from rae.labels import ESCI_MAPPING, LABELS, Label


class RatingError(RaeError, ValueError):
    pass


@dataclass(frozen=True)
class RatingScale:
    name: str
    reads: Mapping[str, Label] | None  # a discrete scale: each rating (as text) -> label
    writes: Mapping[Label, float]
    low: float = 0.0  # a continuous scale from ``low`` to ``high``, cut in thirds
    high: float | None = None
    cuts: tuple[float, float] | None = None  # a scale without a bound: where acceptable and highly relevant start

    @property
    def cut_in_thirds(self) -> bool:
        return self.reads is None and self.cuts is None

    def label(self, rating: object) -> Label:
        """The label a rating stands for; a rating this scale does not have is an error, never a guess."""
        text = str(rating).strip()
        if self.reads is not None and text in self.reads:
            return self.reads[text]
        try:
            value = float(text)
        except ValueError:
            raise RatingError(f"rating {rating!r} is not a number (scale {self.name})") from None
        if self.cuts is not None:
            return LABELS[0] if value < self.cuts[0] else LABELS[1] if value < self.cuts[1] else LABELS[2]
        if self.reads is None:
            if not self.low <= value <= self.high:
                raise RatingError(f"rating {text} is outside the scale {self.name} ({self.low:g} to {self.high:g})")
            share = (value - self.low) / (self.high - self.low)
            return LABELS[0] if share < 1 / 3 else LABELS[1] if share < 2 / 3 else LABELS[2]
        if f"{value:g}" not in self.reads:
            raise RatingError(f"rating {text} is not on the scale {self.name} ({', '.join(self.reads)})")
        return self.reads[f"{value:g}"]

    def rating(self, label: Label) -> float:
        return self.writes[label]

    def readable(self, rating: str) -> bool:
        try:
            self.label(rating)
        except RatingError:
            return False
        return True


I, S, E = LABELS  # noqa: E741 - the ESCI letters: irrelevant, substitute, exact
SCALES: dict[str, RatingScale] = {
    "0-2": RatingScale("0-2", {"0": I, "1": S, "2": E}, {I: 0, S: 1, E: 2}),
    "0-3": RatingScale("0-3", {"0": I, "1": S, "2": E, "3": E}, {I: 0, S: 1, E: 3}),
    "0-1": RatingScale("0-1", {"0": I, "1": E}, {I: 0, S: 1, E: 1}),
    "srw-esci": RatingScale("srw-esci", {"100": E, "10": S, "1": I, "0": I}, {I: 0, S: 10, E: 100}),
    "unit": RatingScale("unit", None, {I: 0.0, S: 0.5, E: 1.0}, high=1.0),
    "percent": RatingScale("percent", None, {I: 0, S: 50, E: 100}, high=100.0),
}
# rae's own files name labels (or ESCI letters) rather than rate them
NAMED_LABELS = RatingScale("labels", {**{str(label): label for label in LABELS}, **ESCI_MAPPING}, {label: LABELS.index(label) for label in LABELS})
QUEPID_SCORERS = {  # Quepid's communal scorers (db/seeds.rb) and the scale each rates on
    "ndcg@10": "0-3", "dcg@10": "0-3", "cg@10": "0-3", "err@10": "0-3", "p@10": "0-1", "ap@10": "0-1", "rr@10": "0-1",
}
RANGE = re.compile(r"^(\d+)-(\d+)$")
THRESHOLDS = re.compile(r"^thresholds:([0-9.]+),([0-9.]+)$")


def rating_scale(name: str, custom: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> RatingScale:
    """A named scale: one of ``SCALES``, a Quepid scorer's, an integer range, or a team's own from the settings."""
    if custom and name in custom:
        return _custom(name, custom[name])
    if name in SCALES:
        return SCALES[name]
    if name.lower() in QUEPID_SCORERS:
        return SCALES[QUEPID_SCORERS[name.lower()]]
    match = RANGE.match(name)
    if match and int(match[1]) < int(match[2]):
        low, high = int(match[1]), int(match[2])
        return RatingScale(name, None, {I: low, S: round((low + high) / 2), E: high}, low=low, high=high)
    match = THRESHOLDS.match(name)
    if match:
        return _thresholds(name, match[1], match[2])
    raise RatingError(
        f"unknown rating scale {name!r} (known: {', '.join([*SCALES, *(custom or {})])}, Quepid's scorer names, a range like 1-5, "
        "or thresholds:A,B)"
    )


def _thresholds(name: str, first: str, second: str) -> RatingScale:
    try:
        a, b = float(first), float(second)
    except ValueError:
        raise RatingError(f"--scale {name}: thresholds are two numbers, as in thresholds:0.5,2") from None
    if not a < b:
        raise RatingError(f"--scale {name}: the first threshold (where acceptable substitute starts) must be below the second")
    return RatingScale(name, None, {I: 0.0, S: a, E: b}, cuts=(a, b))


def declared_scale(values: Iterable[object]) -> RatingScale:
    """The scale a Quepid book declares (the ratings a judge may give): a known one, or a refusal that shows the
    mapping a range would apply, so that the user names it."""
    try:
        numbers = sorted({float(str(v).strip()) for v in values})
    except ValueError:
        raise RatingError(f"the book's scale {list(values)} is not a list of numbers") from None
    for name in ("0-1", "0-2", "0-3"):
        if sorted(float(r) for r in SCALES[name].reads) == numbers:
            return SCALES[name]
    if len(numbers) < 2 or any(n != int(n) for n in numbers):
        raise RatingError(f"the book's scale {[f'{n:g}' for n in numbers]} is not one rae knows; declare it as a [rating_scales] table and pass --scale")
    proposal = rating_scale(f"{int(numbers[0])}-{int(numbers[-1])}")
    raise RatingError(
        f"the book's scale {', '.join(f'{n:g}' for n in numbers)} is not one rae knows; --scale {proposal.name} would read it as "
        f"{_mapping(proposal, [f'{n:g}' for n in numbers])} (or declare a [rating_scales] table)"
    )


def check_ratings(scale: RatingScale, ratings: Iterable[str]) -> None:
    """Refuse a scale that cannot read every rating of a file, or that would read two of its classes as one."""
    distinct = sorted({_canonical(r) for r in ratings}, key=_order)
    unreadable = [r for r in distinct if not scale.readable(r)]
    if unreadable:
        fits = fitting_scales(distinct)
        hint = f"; the file's ratings ({_listed(distinct)}) fit --scale {' or '.join(fits)}" if fits else f"; {_ask_for_a_scale(distinct)}"
        raise RatingError(f"{scale.name} cannot read the rating{'s' if len(unreadable) > 1 else ''} {_listed(unreadable)}{hint}")
    if scale.cut_in_thirds and not _keeps_classes(scale, distinct):
        fits = [name for name in fitting_scales(distinct) if name != scale.name]
        hint = f": the file's ratings fit --scale {' or '.join(fits)}" if fits else f": {_ask_for_a_scale(distinct)}"
        shown = _mapping(scale, distinct) if len(distinct) <= 12 else f"{len(distinct)} ratings from {distinct[0]} to {distinct[-1]} as {_label_counts(scale, distinct)}"
        raise RatingError(f"--scale {scale.name} would read {shown}, merging classes the file keeps apart{hint}")


def _ask_for_a_scale(distinct: list[str]) -> str:
    """What to pass for ratings no named scale reads: a range where they are whole numbers, else thresholds."""
    try:
        numbers = [float(r) for r in distinct]
    except ValueError:
        return "declare a [rating_scales] table for them"
    if len(numbers) > 1 and all(n.is_integer() and n >= 0 for n in numbers):
        proposal = rating_scale(f"{int(numbers[0])}-{int(numbers[-1])}")
        if _keeps_classes(proposal, distinct):
            return f"--scale {proposal.name} would read {_mapping(proposal, distinct)} (or declare a [rating_scales] table)"
    top = max(1, math.ceil(max(numbers)))
    return (f"no named scale reads these {len(distinct)} distinct ratings ({_listed(distinct)}, up to {distinct[-1]}): give their range (--scale 0-{top}) "
            "or thresholds (--scale thresholds:0.5,2 reads below 0.5 as irrelevant, below 2 as acceptable substitute, else highly relevant)")


def _label_counts(scale: RatingScale, distinct: list[str]) -> str:
    labels = [scale.label(r) for r in distinct]
    return ", ".join(f"{labels.count(label)} {label}" for label in LABELS if label in labels)


def fitting_scales(ratings: list[str]) -> list[str]:
    """Named scales that read every one of the ratings, each distinct discrete rating a declared class."""
    fits = []
    for name, scale in SCALES.items():
        if all(scale.readable(r) for r in ratings) and (not scale.cut_in_thirds or _keeps_classes(scale, ratings)):
            fits.append(name)
    exact = [name for name in fits if not SCALES[name].cut_in_thirds and {_canonical(r) for r in ratings} == set(SCALES[name].reads)]
    return exact or fits


def _keeps_classes(scale: RatingScale, distinct: list[str]) -> bool:
    """Whether cutting in thirds keeps the file's grades apart: as many labels as grades, up to three."""
    if len(distinct) > 12:  # a continuous rating: thirds are what it means, if it fills the scale
        values = [float(r) for r in distinct]
        return max(values) - min(values) >= (scale.high - scale.low) / 2
    return len({scale.label(r) for r in distinct}) == min(3, len(distinct))


def _custom(name: str, spec: Mapping[str, Mapping[str, str]]) -> RatingScale:
    try:
        reads = {f"{float(r):g}": Label(label) for r, label in spec["reads"].items()}
        writes = {Label(label): float(r) for label, r in spec["writes"].items()}
    except (KeyError, ValueError) as exc:
        raise RatingError(f"rating scale {name}: needs reads (rating = label) and writes (label = rating): {exc}") from None
    return RatingScale(name, reads, writes)


def _mapping(scale: RatingScale, ratings: list[str]) -> str:
    return ", ".join(f"{r} as {scale.label(r)}" for r in ratings)


def _listed(ratings: list[str]) -> str:
    return ", ".join(ratings[:8]) + (f" and {len(ratings) - 8} more" if len(ratings) > 8 else "")


def _canonical(rating: str) -> str:
    try:
        return f"{float(rating):g}"
    except ValueError:
        return rating.strip()


def _order(rating: str) -> tuple[int, float, str]:
    try:
        return (0, float(rating), rating)
    except ValueError:
        return (1, 0.0, rating)

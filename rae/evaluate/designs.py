"""Which queries humans should label: three designs rae can vouch for, and what they know before anyone labels.

Every design draws from the evaluated queries at random, with probabilities rae records, so the corrected estimate
(``rae.evaluate.ppi``) stays unbiased; they differ in where the labels go.

- **uniform**: every query the same chance (a simple random sample).
- **stratified**: strata from what rae knows before anyone labels (how unsure the judge is of the query's metric,
  or the query's frequency band when the queries came from a log), and an allocation halfway between Neyman's (a
  stratum's labels in proportion to its size times the judge's own spread there; Neyman 1934; Fogliato et al., ECCV
  2024) and proportional, since the judge's spread may be wrong about where the humans' metric varies; at least ten
  each so each stratum's spread can be estimated. The queries whose pools humans labelled whole before the draw are
  a stratum of their own, ``known``, taken whole (probability 1): their metric is known exactly, so a label spent
  there would settle nothing, and the labels asked for all go to the other queries.
- **active**: each query's chance of being drawn in proportion to the judge's own spread of its metric, with a share
  of it spread evenly (a defensive mixture, Hesterberg 1995, so that no weight explodes), drawn without replacement
  by Pareto sampling (Rosén 1997), which gives each query its chance and never draws one twice; the queries whose
  chance reaches 1 are a stratum of their own, ``certain``, taken whole. The estimate weighs each drawn query by the
  inverse of its chance, normalised (Zrnic and Candès, active statistical inference, 2024; Hajek's form,
  ``rae.evaluate.ppi``). Without replacement, a query drawn counts its finite-population correction, which an older
  rae's draw, made with replacement, forwent; its stored draws are read as they were made. The queries labelled whole
  before the draw are taken whole beside it, as the stratified design takes them, and the draws go to the others.
  The share is what rae knows of the judge (``defensive_share``): its spread says where its errors lie only as far
  as it agrees with the humans, and a judge sure of labels the humans contradict would send the labels away from its
  errors and weigh the queries holding them most.

**The judge's own spread** of a query's metric: each pair's label is redrawn from what the judge believes of it (its
label probabilities or its confidence when rae measured them, else its label kept with probability 1 - epsilon and
otherwise redrawn from the judge's own mix of labels; with a panel of judges, the mean of their beliefs, which
spreads where they disagree), and the metric recomputed; the spread over redraws is large
where the judge is unsure of labels that count (a short list, top positions, labels it hesitates on) and zero for a
difference between two engines that return the same list. It is known before anyone labels, which is what lets a
design use it.
"""

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from rae.evaluate.ppi import ACTIVE, CERTAIN, KNOWN, STRATIFIED, UNIFORM, Sample

DESIGNS = (UNIFORM, STRATIFIED, ACTIVE)
OLDER_NAMES = {"confidence": STRATIFIED}  # an older rae's stratified draw, by the judge's confidence
UNCHECKED_SHARE = 0.75  # of the active design's probability spread evenly, for a judge no human labels have checked
LEAST_SHARE = 0.5  # never less, however good the judge: no query's chance below half the uniform draw's (see defensive_share)
DEFAULT_EPSILON = 0.3  # the share of labels a judge of unknown confidence is taken to get wrong
REDRAWS = 64
MIN_PER_STRATUM = 10  # fewer, and a stratum's spread and the interval's degrees of freedom cost more than the strata save

Beliefs = dict[str, dict[str, np.ndarray]]  # query id -> product id -> probability of each gain (0, 1, 2)
MetricOf = Callable[[dict[str, dict[str, int]]], np.ndarray]  # gains -> the per-query metric, in population order


def beliefs_from_labels(gains: dict[str, dict[str, int]], epsilon: float = DEFAULT_EPSILON, pools: Mapping[str, Iterable[str]] | None = None) -> Beliefs:
    """A judge of unknown confidence: its label kept with probability 1 - epsilon, else one of its own mix. A product
    of ``pools`` it did not label (a failed judgment, a product no click log showed) is its mix alone: it knows
    nothing of it, which is the most unsure it can be, never the least."""
    counts = np.bincount([g for labels in gains.values() for g in labels.values()], minlength=3).astype(float)
    mix = counts / counts.sum() if counts.sum() else np.full(3, 1 / 3)
    beliefs = {q: {p: (1 - epsilon) * np.eye(3)[g] + epsilon * mix for p, g in labels.items()} for q, labels in gains.items()}
    for q in sorted(pools or {}):
        for p in sorted(pools[q]):  # in order: a set's order changes from run to run, and the redraws must not
            beliefs.setdefault(q, {}).setdefault(p, mix)
    return beliefs


def mixed_beliefs(panel: Sequence[Beliefs]) -> Beliefs:
    """A panel of judges' beliefs as one: each pair's the mean of the beliefs of the judges that judged it. Where the
    judges agree the mixture is as sure as they are; where they disagree it spreads over their labels, which is where
    a human label settles most, so a design steered by its spread sends labels there."""
    mixed: Beliefs = {}
    for q in sorted({q for beliefs in panel for q in beliefs}):
        for p in sorted({p for beliefs in panel for p in beliefs.get(q, {})}):
            held = [beliefs[q][p] for beliefs in panel if p in beliefs.get(q, {})]
            mixed.setdefault(q, {})[p] = np.mean(held, axis=0)
    return mixed


def pools_of(lists: Mapping[str, Mapping[str, Sequence[str]]]) -> dict[str, set[str]]:
    """Each query's products in any engine's list: what a metric of the lists reads."""
    pools: dict[str, set[str]] = {}
    for rankings in lists.values():
        for q, products in rankings.items():
            pools.setdefault(q, set()).update(products)
    return pools


def judge_spread(beliefs: Beliefs, metric_of: MetricOf, redraws: int = REDRAWS, seed: int = 0) -> np.ndarray:
    """Each query's standard deviation of the metric when the judge's labels are redrawn from its beliefs."""
    rng = np.random.default_rng(seed)
    cells = [(q, p, probabilities) for q, labels in beliefs.items() for p, probabilities in labels.items()]
    cumulative = np.cumsum(np.array([c[2] for c in cells]), axis=1) if cells else np.zeros((0, 3))
    values = []
    for _ in range(redraws):
        drawn = (rng.random((len(cells), 1)) > cumulative).sum(axis=1) if cells else []
        gains: dict[str, dict[str, int]] = {}
        for (q, p, _), g in zip(cells, drawn, strict=True):
            gains.setdefault(q, {})[p] = int(min(g, 2))
        values.append(metric_of(gains))
    spread = np.std(np.array(values), axis=0)
    return np.where(spread < 1e-9, 0.0, spread)  # rounding noise of identical redraws is no spread


@dataclass
class Draw:
    """A design's draw: per drawn query its stratum, its probability (of being drawn at all; per draw for an older
    rae's active draw, ``replacement``) and how many times it was drawn; each stratum's size; and when it was made (the
    human labels given before then are fixed whatever it drew, so the prediction the drawn queries correct may hold
    them)."""

    design: str
    strata: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)
    draws: dict[str, int] = field(default_factory=dict)
    stratum_sizes: dict[str, int] = field(default_factory=dict)
    made_at: datetime | None = None
    replacement: bool = False  # an older rae's active draw: with replacement, each probability per draw

    @classmethod
    def from_rows(cls, rows: list[Any]) -> "Draw | None":
        """The draw as the store keeps it (``rae.store.samples``); a stratum's size written by an older rae follows
        from how many were drawn in it and their probability."""
        if not rows:
            return None
        design = OLDER_NAMES.get(rows[0].design, rows[0].design)
        found = cls(design, made_at=min(row.created_at for row in rows), replacement=design == ACTIVE and not rows[0].without_replacement)
        drawn_in: dict[str, int] = {}
        for row in rows:
            found.strata[row.query_id], found.probabilities[row.query_id] = row.stratum, row.inclusion_probability
            found.draws[row.query_id] = row.draws or 1
            drawn_in[row.stratum] = drawn_in.get(row.stratum, 0) + 1
            found.stratum_sizes[row.stratum] = row.stratum_size or round(drawn_in[row.stratum] / row.inclusion_probability)
        return found

    def rows(self) -> list[dict[str, Any]]:
        return [{"query_id": q, "design": self.design, "stratum": self.strata[q], "inclusion_probability": self.probabilities[q],
                 "draws": self.draws[q], "stratum_size": self.stratum_sizes[self.strata[q]], "without_replacement": not self.replacement}
                for q in self.draws]

    def size(self) -> int:
        """The draws the design made (an active one counts a query drawn twice twice), beside its census of the queries
        labelled whole before: what ``--queries`` asked for."""
        return sum(n for q, n in self.draws.items() if self.strata[q] != KNOWN)

    def same_as(self, other: "Draw") -> bool:
        """The same queries, strata, probabilities and draws, whatever order they are listed in."""
        return sorted(tuple(row.values()) for row in self.rows()) == sorted(tuple(row.values()) for row in other.rows())

    def sample(self, population: list[str], complete: set[str] | None = None) -> Sample:
        """The draws as a ``Sample`` over ``population`` (query ids in the order of the estimates' arrays); with
        ``complete``, only the drawn queries whose pools humans labelled whole."""
        position = {q: i for i, q in enumerate(population)}
        kept = [q for q in self.draws if q in position and (complete is None or q in complete)]
        repeated = [q for q in kept for _ in range(self.draws[q])]
        strata = np.array([self.strata[q] for q in repeated], dtype=object)
        positions = np.array([position[q] for q in repeated], dtype=int)
        probabilities = np.array([self.probabilities[q] for q in repeated]) if self.design == ACTIVE else None
        return Sample(self.design, positions, strata, dict(self.stratum_sizes), probabilities, self.replacement)


def draw(design: str, population: list[str], n: int, spread: np.ndarray | None = None, bands: dict[str, str] | None = None,
         seed: int = 0, known: Collection[str] = (), even_share: float = UNCHECKED_SHARE) -> Draw:
    """Draw ``n`` of the ``population`` queries by ``design``; ``spread`` is the judge's own spread of each query's
    metric (``judge_spread``), ``bands`` each query's frequency band (strata instead of the spread), ``known`` the
    queries labelled whole already (the stratified and active designs take them whole, beside their ``n``), ``even_share`` the
    active design's probability spread evenly (``defensive_share``)."""
    rng = np.random.default_rng(seed)
    spread = np.ones(len(population)) if spread is None else np.asarray(spread, dtype=float)
    known = set(known)
    if design in (STRATIFIED, ACTIVE) and (census := [q for q in population if q in known]):
        return _with_census(design, population, census, n, spread, bands, rng, even_share)
    if design == UNIFORM or len(population) <= n:
        return _stratified_draw(UNIFORM, {q: "all" for q in population}, {"all": min(n, len(population))}, rng)
    if design == ACTIVE:
        return _active_draw(population, n, spread, rng, even_share)
    strata = strata_of(population, spread, n, bands)
    return _stratified_draw(STRATIFIED, strata, neyman(strata, dict(zip(population, spread, strict=True)), n), rng)


def _with_census(design: str, population: list[str], census: list[str], n: int, spread: np.ndarray, bands: dict[str, str] | None,
                 rng: np.random.Generator, even_share: float) -> Draw:
    """The design's draw of ``n`` among the queries not yet labelled whole, beside the ``known`` stratum taken whole
    (every one of the others taken whole when there are no more than ``n``: a stratified draw of them all)."""
    taken = set(census)
    rest = [i for i, q in enumerate(population) if q not in taken]
    others = [population[i] for i in rest]
    if design == ACTIVE and len(others) > n:
        drawn = _active_draw(others, n, spread[rest], rng, even_share)
        for q in census:
            drawn.strata[q], drawn.probabilities[q], drawn.draws[q] = KNOWN, 1.0, 1
        drawn.stratum_sizes[KNOWN] = len(census)
        return drawn
    strata = strata_of(others, spread[rest], n, bands) if len(others) > n else dict.fromkeys(others, "all")
    sizes = neyman(strata, dict(zip(others, spread[rest], strict=True)), n) if len(others) > n else {"all": len(others)}
    return _stratified_draw(STRATIFIED, {**strata, **dict.fromkeys(census, KNOWN)}, {**sizes, KNOWN: len(census)}, rng)


def strata_of(population: list[str], spread: np.ndarray, n: int, bands: dict[str, str] | None = None) -> dict[str, str]:
    """Frequency bands when given, else two halves of the judge's own spread, ``sure`` and ``unsure``; either only
    when there are labels enough for ten in each (one stratum, ``all``, otherwise)."""
    if bands:
        banded = {q: bands.get(q) or "unknown" for q in population}
        enough = n >= MIN_PER_STRATUM * len(set(banded.values()))
        return banded if enough else dict.fromkeys(population, "all")
    groups = 2 if n >= 2 * MIN_PER_STRATUM else 1
    if groups == 1:
        return dict.fromkeys(population, "all")
    names = ["sure", "unsure"]
    order = np.argsort(np.argsort(spread, kind="stable"), kind="stable")  # ranks: ties split evenly
    return {q: names[min(groups - 1, int(order[i] * groups // len(population)))] for i, q in enumerate(population)}


def neyman(strata: dict[str, str], spread: dict[str, float], n: int) -> dict[str, int]:
    """Labels per stratum in proportion to its size times the mean of its spread and the overall spread (half Neyman,
    half proportional), at least ten each and at most its size: each label after the first ten of every stratum
    goes where it lowers the stratified variance (the sum of (size x weight)^2 / labels) most, which reaches that
    allocation in whole labels."""
    members: dict[str, list[str]] = {}
    for q, s in strata.items():
        members.setdefault(s, []).append(q)
    overall = float(np.mean(list(spread.values()))) if spread else 0.0
    need = {s: len(m) * (float(np.mean([spread[q] for q in m])) + overall) / 2 + 1e-9 for s, m in members.items()}
    sizes = {s: min(len(m), MIN_PER_STRATUM, n) for s, m in members.items()}
    while sum(sizes.values()) < n:
        open_strata = [s for s in members if sizes[s] < len(members[s])]
        if not open_strata:
            break
        gain = {s: need[s] ** 2 * (1 / sizes[s] - 1 / (sizes[s] + 1)) for s in open_strata}
        sizes[max(open_strata, key=lambda s: (gain[s], s))] += 1
    return sizes


def _stratified_draw(design: str, strata: dict[str, str], sizes: dict[str, int], rng: np.random.Generator) -> Draw:
    members: dict[str, list[str]] = {}
    for q, s in strata.items():
        members.setdefault(s, []).append(q)
    result = Draw(design, stratum_sizes={s: len(m) for s, m in members.items()})
    for stratum, queries in sorted(members.items()):
        size = sizes.get(stratum, 0)
        for q in rng.choice(sorted(queries), size, replace=False) if size else []:
            result.strata[str(q)], result.probabilities[str(q)], result.draws[str(q)] = stratum, size / len(queries), 1
    return result


def defensive_share(kappa: float | None) -> float:
    """The active design's probability spread evenly, from the judge's agreement with the humans (Cohen's kappa on
    the pairs both labelled): 1 - kappa, so a judge at chance or worse gets a uniform draw (its spread says nothing of
    where it errs), between ``LEAST_SHARE`` and 1; ``UNCHECKED_SHARE`` when no human labels measure it.

    Never below half, however good the judge: what the drawn queries correct is the humans' metric less lam times the
    judge's, and with lam below 1 that keeps part of the metric's own spread, which the judge's spread does not see; a
    query the judge is sure of still varies there."""
    if kappa is None or not np.isfinite(kappa):
        return UNCHECKED_SHARE
    return float(np.clip(1 - kappa, LEAST_SHARE, 1.0))


def even_share_said(kappa: float | None) -> str:
    """The active design's share spread evenly and why, as a line says it."""
    why = (f"the judge's kappa against the humans' labels is {round(kappa, 2) + 0.0:.2f}" if kappa is not None and np.isfinite(kappa)
           else "no human labels measure the judge's agreement")
    return f"{defensive_share(kappa):.0%} of the chance spread evenly, since {why}"


def active_probabilities(spread: np.ndarray, even_share: float = UNCHECKED_SHARE) -> np.ndarray:
    """Each query's share of the active design's chance: its share of the judge's spread, mixed with ``even_share``
    spread evenly. They sum to 1; ``inclusion_probabilities`` makes them n draws' chances."""
    spread = np.asarray(spread, dtype=float)
    uniform = np.full(len(spread), 1 / len(spread))
    if spread.sum() <= 0:
        return uniform
    return (1 - even_share) * spread / spread.sum() + even_share * uniform


def inclusion_probabilities(shares: np.ndarray, n: int) -> np.ndarray:
    """Each query's chance of being among ``n`` drawn without replacement, in proportion to its share: n times the
    share, those that would pass 1 held at 1 (drawn for certain) and the others' scaled up so the chances sum to n."""
    shares = np.asarray(shares, dtype=float)
    chances, certain = np.zeros(len(shares)), np.zeros(len(shares), dtype=bool)
    if n >= len(shares):
        return np.ones(len(shares))
    while True:
        rest = ~certain
        chances[rest] = (n - certain.sum()) * shares[rest] / shares[rest].sum()
        over = rest & (chances >= 1)
        if not over.any():
            return chances
        certain |= over
        chances[certain] = 1.0


def pareto_draw(chances: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The positions of ``n`` queries drawn by Pareto sampling (Rosén 1997, an order sampling scheme): each query
    gets a uniform U, ranked by U / (1 - U) over c / (1 - c) for its chance c, and the n first are drawn, those of
    chance 1 always. Each is drawn with its chance to within a fraction of a percent and never twice, and the draw is
    as random as a fixed-size draw with those chances can be (high entropy), which is what Hajek's variance, the
    interval's, assumes."""
    chances = np.asarray(chances, dtype=float)
    u = rng.random(len(chances))
    inside = np.clip(chances, 1e-12, 1 - 1e-12)
    order = np.where(chances >= 1, -np.inf, (u / (1 - u)) / (inside / (1 - inside)))
    return np.argsort(order, kind="stable")[:n]


def _active_draw(population: list[str], n: int, spread: np.ndarray, rng: np.random.Generator, even_share: float) -> Draw:
    """The active draw; the queries whose chance reached 1 form a stratum of their own, ``certain``, taken whole, and
    the draws among the others are weighed against the share of the queries those are."""
    chances = inclusion_probabilities(active_probabilities(spread, even_share), n)
    certain = int(np.sum(chances >= 1))
    result = Draw(ACTIVE, stratum_sizes={"all": len(population) - certain, **({CERTAIN: certain} if certain else {})})
    for index in pareto_draw(chances, n, rng):
        q = population[int(index)]
        result.strata[q], result.probabilities[q], result.draws[q] = CERTAIN if chances[index] >= 1 else "all", float(chances[index]), 1
    return result

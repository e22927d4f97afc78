"""``rae ppi-check``: do the intervals rae prints cover the truth? A coverage study on the bundled labelled set.

The population is every labelled query of a split. Each engine retrieves its top k for each, and the lists are
condensed to the products humans labelled, so that every query is fully labelled and the truth is known: an engine's
mean metric under the human labels over all the queries, and the difference between the first two engines (the
second minus the first: a gate's candidate minus its baseline). A judge (stored judgments of the configured model, or
a simulated judge) labels the same products. Then, many times over, n queries are drawn by each design rae offers
(``rae.evaluate.designs``: uniform, stratified, active) as "the human-labelled ones", and the intervals rae would
print are computed: humans only (from the uniform draw) and the judge corrected by each design's draw. The table
counts how often each covers the truth and how wide it is.

A simulated judge agrees with the humans at a chosen Cohen's kappa: for each pair it copies the human label with
probability kappa, else draws a label from the humans' own label distribution (so agreement is kappa beyond chance,
exactly, in expectation). The "raises 30%" judge moves one label up one step in 30% of pairs, a judge biased upward.
A calibrated simulated judge (``--calibrated``) labels as the one at its kappa and knows which of its labels are
copies and which are guesses: the best a judge's confidence could tell a design. The configured model's beliefs are
its label probabilities where rae measured them, as ``rae review queue --for-evaluation`` draws with them.
"""

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.annotate.run import AnnotationRun
from rae.datasets.records import Pair, Rating
from rae.evaluate.designs import (
    ACTIVE,
    DESIGNS,
    STRATIFIED,
    UNCHECKED_SHARE,
    UNIFORM,
    Beliefs,
    MetricOf,
    beliefs_from_labels,
    draw,
    judge_spread,
    pools_of,
)
from rae.evaluate.judge_beliefs import label_probabilities
from rae.evaluate.metrics import Gains, condensed, engine_metrics
from rae.evaluate.ppi import Sample, humans_and_ppi
from rae.labels import LABELS, Label
from rae.retrieve.rankings import Rankings
from rae.workspace import Workspace


@dataclass(frozen=True)
class StudiedJudge:
    """A judge the studies set against the humans: its labels, and its own probabilities of each label where it has
    them (else, as a design reads a judge of unknown confidence, its label kept with probability 1 - epsilon)."""

    gains: Gains
    measured: Beliefs = field(default_factory=dict)

    def beliefs(self, pools: dict[str, set[str]]) -> Beliefs:
        beliefs = beliefs_from_labels(self.gains, pools=pools)
        for q, products in self.measured.items():
            beliefs.setdefault(q, {}).update(products)
        return beliefs

    def holding(self, known: Gains) -> "StudiedJudge":
        """This judge with the humans' ``known`` labels in place of its own, and sure of them: the prediction a draw
        corrects when those labels were given before it (``rae.evaluate.corrected``)."""
        gains = {q: {**self.gains.get(q, {}), **known.get(q, {})} for q in sorted(self.gains.keys() | known.keys())}  # in order: the redraws follow it
        measured = {q: dict(self.measured.get(q, {})) for q in self.measured}
        for q, labels in known.items():
            measured.setdefault(q, {}).update({p: np.eye(3)[g] for p, g in labels.items()})
        return StudiedJudge(gains, measured)

    def spread(self, lists: dict[str, Rankings], metric_of: MetricOf, seed: int) -> np.ndarray:
        """Each query's spread of ``metric_of`` when its labels are redrawn from its beliefs (``judge_spread``)."""
        return judge_spread(self.beliefs(pools_of(lists)), metric_of, seed=seed)


@dataclass(frozen=True)
class CoverageRow:
    judge: str
    target: str  # an engine, or "b - a" for the difference of the first two
    n: int
    truth: float
    llm_only: float  # the judge alone over all queries: its error is the judge's bias
    coverage_humans: float
    width_humans: float  # mean width of the 95% interval
    coverage: dict[str, float]  # design -> how often the corrected interval covered the truth
    width: dict[str, float]  # design -> its mean width

    @property
    def width_ratio(self) -> float:
        """The uniform design's corrected width over the humans-only width from the same draws."""
        return self.width[UNIFORM] / self.width_humans if self.width_humans else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "width_ratio": round(self.width_ratio, 3)}


@dataclass
class CoverageStudy:
    metric: str
    queries: int
    repetitions: int
    designs: tuple[str, ...] = DESIGNS
    rows: list[CoverageRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "queries": self.queries, "repetitions": self.repetitions, "designs": list(self.designs),
                "rows": [r.as_dict() for r in self.rows]}

    def markdown(self) -> str:
        designs = " | ".join(f"coverage PPI {d}" for d in self.designs)
        widths = " | ".join(f"width PPI {d}" for d in self.designs)
        lines = [
            f"Coverage of nominal 95% intervals of mean {self.metric} over {self.queries} queries; n of them drawn by each design "
            f"as the human-labelled ones, {self.repetitions} times",
            "",
            f"| judge | target | n | truth | judge alone | coverage humans only | {designs} | width humans only | {widths} | PPI / humans |",
            "| --- " * (7 + 2 * len(self.designs)) + "|",
        ]
        for r in self.rows:
            cover = " | ".join(f"{r.coverage[d]:.3f}" for d in self.designs)
            wide = " | ".join(f"{r.width[d]:.3f}" for d in self.designs)
            lines.append(f"| {r.judge} | {r.target} | {r.n} | {r.truth:.3f} | {r.llm_only:.3f} | {r.coverage_humans:.3f} | {cover} | "
                         f"{r.width_humans:.3f} | {wide} | {r.width_ratio:.2f} |")
        return "\n".join(lines)


def condensed_lists(rankings: dict[str, Rankings], humans: list[Rating]) -> dict[str, Rankings]:
    """Each engine's lists keeping only the products humans labelled: every query is then fully labelled."""
    return {engine: condensed(ranking, human_gains(humans)) for engine, ranking in rankings.items()}


def human_gains(humans: list[Rating]) -> Gains:
    gains: Gains = {}
    for judgment in humans:
        gains.setdefault(judgment.query_id, {})[judgment.product_id] = judgment.label.gain
    return gains


def simulated_judge(humans: list[Rating], kappa: float, seed: int = 0) -> Gains:
    """A judge that agrees with the humans at Cohen's kappa ``kappa`` (in expectation); deterministic per pair."""
    gains: Gains = {}
    for j, (gain, _) in zip(humans, _copied_or_guessed(humans, kappa, seed), strict=True):
        gains.setdefault(j.query_id, {})[j.product_id] = gain
    return gains


def calibrated_judge(humans: list[Rating], kappa: float, seed: int = 0) -> StudiedJudge:
    """The judge of ``simulated_judge`` (the same labels), sure of the labels it copied and, for those it guessed,
    believing the humans' own mix: a judge whose confidence says exactly where it may err."""
    shares = _label_shares(humans)
    gains: Gains = {}
    measured: Beliefs = {}
    for j, (gain, copied) in zip(humans, _copied_or_guessed(humans, kappa, seed), strict=True):
        gains.setdefault(j.query_id, {})[j.product_id] = gain
        measured.setdefault(j.query_id, {})[j.product_id] = np.eye(3)[gain] if copied else shares
    return StudiedJudge(gains, measured)


def _copied_or_guessed(humans: list[Rating], kappa: float, seed: int) -> list[tuple[int, bool]]:
    """Per human label: the simulated judge's gain, and whether it copied the human's (probability kappa) rather than
    drew one from the humans' own mix; deterministic per pair."""
    shares = _label_shares(humans)
    found = []
    for j in humans:
        draw_ = np.random.default_rng(_pair_seed(j, seed))
        copied = draw_.random() < kappa
        found.append((j.label.gain, True) if copied else (int(draw_.choice(3, p=shares)), False))
    return found


def _label_shares(humans: list[Rating]) -> np.ndarray:
    return np.bincount([j.label.gain for j in humans], minlength=3) / len(humans)


def raising_judge(humans: list[Rating], share: float = 0.3, seed: int = 0) -> Gains:
    """A biased judge: it raises the human label by one step in ``share`` of the pairs (never above the top)."""
    gains: Gains = {}
    for j in humans:
        raised = np.random.default_rng(_pair_seed(j, seed)).random() < share
        gains.setdefault(j.query_id, {})[j.product_id] = min(j.label.gain + raised, len(LABELS) - 1)
    return gains


def configured_judge(workspace: Workspace, lists: dict[str, Rankings], progress: bool = True) -> StudiedJudge:
    """The configured judge's labels of every product in the lists, judged through the store (paid once: a second
    check reads them back), with its label probabilities where rae measured them. A pair whose judgment failed to
    parse counts as unjudged."""
    queries = {q.query_id: q.text for q in workspace.labelled.queries("all")}
    pairs = list(dict.fromkeys(Pair(q, queries[q], p) for ranking in lists.values() for q, products in ranking.items() for p in products))
    AnnotationRun(workspace.judging(), workspace.labelled.catalog, workspace.workers, progress).run(pairs)
    gains: Gains = {}
    measured: Beliefs = {}
    for pair, outcome in workspace.stored_judgments(pairs).items():
        if outcome.ok:
            gains.setdefault(pair.query_id, {})[pair.product_id] = Label(outcome.value.label).gain
            probabilities = label_probabilities(outcome.value.probabilities)
            if probabilities is not None:
                measured.setdefault(pair.query_id, {})[pair.product_id] = probabilities
    return StudiedJudge(gains, measured)


def click_gains(clicks: list[Rating]) -> Gains:
    """The click judgments (``rae judgments from-clicks``) as a judge: a product the log never showed for the query is
    unjudged, as a click model leaves it."""
    gains: Gains = {}
    for rating in clicks:
        gains.setdefault(rating.query_id, {})[rating.product_id] = rating.label.gain
    return gains


@dataclass(frozen=True)
class Target:
    """What an interval is about: one engine's mean metric, or the difference of two (``second`` minus ``first``)."""

    name: str
    first: str
    second: str | None = None

    def values(self, lists: dict[str, Rankings], gains: Gains, k: int, metric: str, queries: list[str]) -> np.ndarray:
        value = per_query(lists[self.first], gains, k, metric, queries)
        return value if self.second is None else per_query(lists[self.second], gains, k, metric, queries) - value


def targets_of(engines: list[str]) -> list[Target]:
    """Each engine's mean, and the difference of the first two."""
    found = [Target(e, e) for e in engines]
    return found + ([Target(f"{engines[1]} - {engines[0]}", engines[0], engines[1])] if len(engines) > 1 else [])


def coverage_study(
    lists: dict[str, Rankings],
    truth_gains: Gains,
    judges: dict[str, StudiedJudge],
    k: int,
    sizes: tuple[int, ...] = (10, 20),
    repetitions: int = 1000,
    seed: int = 0,
    metric: str | None = None,
    designs: tuple[str, ...] = DESIGNS,
) -> CoverageStudy:
    metric = metric or f"ndcg@{k}"
    queries = sorted(next(iter(lists.values())))
    study = CoverageStudy(metric, len(queries), repetitions, designs)
    for judge, studied in judges.items():
        for target in targets_of(list(lists)):
            human = target.values(lists, truth_gains, k, metric, queries)
            llm = target.values(lists, studied.gains, k, metric, queries)
            spread = studied.spread(lists, lambda g, t=target: t.values(lists, g, k, metric, queries), seed)
            for n in sizes:
                if n >= len(queries):
                    continue
                draws = np.random.default_rng([seed, n])  # the same draws for every judge and target of a size
                study.rows.append(_row(judge, target, n, human, llm, spread, queries, repetitions, draws, designs))
    return study


def _row(judge: str, target: Target, n: int, human: np.ndarray, llm: np.ndarray, spread: np.ndarray, queries: list[str], repetitions: int,
         rng: np.random.Generator, designs: tuple[str, ...]) -> CoverageRow:
    truth = float(human.mean())
    covered = {name: 0 for name in ("humans", *designs)}
    widths: dict[str, list[float]] = {name: [] for name in covered}
    for _ in range(repetitions):
        for design in designs:
            sample = drawn_sample(design, queries, n, spread, rng)
            humans_only, ppi, _ = humans_and_ppi(llm, human[sample.positions], sample, difference=target.second is not None)
            found = [(design, ppi)] + ([("humans", humans_only)] if design == UNIFORM else [])
            for name, estimate in found:
                covered[name] += estimate.ci_low <= truth <= estimate.ci_high
                widths[name].append(estimate.ci_high - estimate.ci_low)
    return CoverageRow(
        judge, target.name, n, round(truth, 4), round(float(llm.mean()), 4),
        round(covered["humans"] / repetitions, 3), round(float(np.mean(widths["humans"])), 4) if widths["humans"] else float("nan"),
        {d: round(covered[d] / repetitions, 3) for d in designs}, {d: round(float(np.mean(widths[d])), 4) for d in designs},
    )


def drawn_sample(design: str, queries: list[str], n: int, spread: np.ndarray, rng: np.random.Generator, known: Collection[str] = (),
                 even_share: float = UNCHECKED_SHARE) -> Sample:
    """A draw of ``n`` queries to label by ``design`` (the stratified and active ones take the ``known`` queries whole
    beside them; the active one spreads ``even_share`` of its probability evenly)."""
    if design == UNIFORM:
        return Sample.uniform(rng.choice(len(queries), n, replace=False), len(queries))
    drawn = draw(design if design in (STRATIFIED, ACTIVE) else UNIFORM, queries, n, spread, seed=int(rng.integers(2**32)), known=known,
                 even_share=even_share)
    return drawn.sample(queries)


def per_query(ranking: Rankings, gains: Gains, k: int, metric: str, queries: list[str]) -> np.ndarray:
    return engine_metrics(ranking, gains, k).per_query[metric].reindex(queries).fillna(0.0).to_numpy(dtype=float)


def _pair_seed(judgment: Rating, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{judgment.query_id}:{judgment.product_id}".encode()).hexdigest()[:12], 16)

"""``rae ppi-check``: are the prediction-powered intervals honest? A coverage study on the bundled labelled set.

The population is every labelled query of a split. Each engine retrieves its top k for each, and the lists are
condensed to the products humans labelled, so that every query is fully labelled and the truth is known: an engine's
mean metric under the human labels over all the queries. The judge (stored judgments of the configured model, or a
simulated judge) labels the same products. Then, many times over, n queries are drawn as "the human-labelled ones",
and the humans-only interval (n queries) and the PPI interval (the judge on all queries, humans on the n) are
computed: how often does each cover the truth, and how wide is it?

A simulated judge agrees with the humans at a chosen Cohen's kappa: for each pair it copies the human label with
probability kappa, else draws a label from the humans' own label distribution (so agreement is kappa beyond chance,
exactly, in expectation). It shows where PPI starts to pay; the embedded model, near kappa 0, shows that a weak judge
costs width, not validity.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.annotate.run import AnnotationRun
from rae.datasets.records import Pair, Rating
from rae.evaluate.metrics import Gains, condensed, engine_metrics
from rae.evaluate.ppi import humans_and_ppi
from rae.labels import LABELS, Label
from rae.retrieve.rankings import Rankings
from rae.workspace import Workspace


@dataclass(frozen=True)
class CoverageRow:
    judge: str
    engine: str
    n: int
    truth: float
    llm_only: float  # the judge alone over all queries: its error is the judge's bias
    coverage_humans: float
    coverage_ppi: float
    width_humans: float  # mean width of the 95% interval
    width_ppi: float

    @property
    def width_ratio(self) -> float:
        return self.width_ppi / self.width_humans if self.width_humans else float("nan")


@dataclass
class CoverageStudy:
    metric: str
    queries: int
    repetitions: int
    rows: list[CoverageRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        rows = [{**vars(r), "width_ratio": round(r.width_ratio, 3)} for r in self.rows]
        return {"metric": self.metric, "queries": self.queries, "repetitions": self.repetitions, "rows": rows}

    def markdown(self) -> str:
        lines = [
            f"Coverage of nominal 95% intervals of mean {self.metric} over {self.queries} queries; n of them drawn as the "
            f"human-labelled ones, {self.repetitions} times",
            "",
            "| judge | engine | n | truth | judge alone | coverage humans only | coverage PPI | width humans only | width PPI | PPI / humans |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.judge} | {r.engine} | {r.n} | {r.truth:.3f} | {r.llm_only:.3f} | {r.coverage_humans:.3f} | {r.coverage_ppi:.3f} | "
                f"{r.width_humans:.3f} | {r.width_ppi:.3f} | {r.width_ratio:.2f} |"
            )
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
    shares = np.bincount([j.label.gain for j in humans], minlength=3) / len(humans)
    gains: Gains = {}
    for j in humans:
        draw = np.random.default_rng(_pair_seed(j, seed))
        gain = j.label.gain if draw.random() < kappa else int(draw.choice(3, p=shares))
        gains.setdefault(j.query_id, {})[j.product_id] = gain
    return gains


def raising_judge(humans: list[Rating], share: float = 0.3, seed: int = 0) -> Gains:
    """A biased judge: it raises the human label by one step in ``share`` of the pairs (never above the top)."""
    gains: Gains = {}
    for j in humans:
        raised = np.random.default_rng(_pair_seed(j, seed)).random() < share
        gains.setdefault(j.query_id, {})[j.product_id] = min(j.label.gain + raised, len(LABELS) - 1)
    return gains


def judge_gains(workspace: Workspace, lists: dict[str, Rankings], progress: bool = True) -> Gains:
    """The configured judge's labels of every product in the lists, judged through the store (paid once: a second
    check reads them back). A pair whose judgment failed to parse counts as unjudged."""
    queries = {q.query_id: q.text for q in workspace.labelled.queries("all")}
    pairs = list(dict.fromkeys(Pair(q, queries[q], p) for ranking in lists.values() for q, products in ranking.items() for p in products))
    AnnotationRun(workspace.judging(), workspace.labelled.catalog, workspace.workers, progress).run(pairs)
    gains: Gains = {}
    for pair, outcome in workspace.stored_judgments(pairs).items():
        if outcome.ok:
            gains.setdefault(pair.query_id, {})[pair.product_id] = Label(outcome.value.label).gain
    return gains


def coverage_study(
    lists: dict[str, Rankings],
    truth_gains: Gains,
    judges: dict[str, Gains],
    k: int,
    sizes: tuple[int, ...] = (10, 20, 40),
    repetitions: int = 1000,
    seed: int = 0,
    metric: str | None = None,
) -> CoverageStudy:
    metric = metric or f"ndcg@{k}"
    queries = sorted(next(iter(lists.values())))
    study = CoverageStudy(metric, len(queries), repetitions)
    draws = np.random.default_rng(seed)
    for judge, gains in judges.items():
        for engine, ranking in lists.items():
            human = _per_query(ranking, truth_gains, k, metric, queries)
            llm = _per_query(ranking, gains, k, metric, queries)
            for n in sizes:
                if n >= len(queries):
                    continue
                study.rows.append(_row(judge, engine, n, human, llm, repetitions, draws))
    return study


def _row(judge: str, engine: str, n: int, human: np.ndarray, llm: np.ndarray, repetitions: int, draws: np.random.Generator) -> CoverageRow:
    truth = float(human.mean())
    covered = {"humans": 0, "ppi": 0}
    widths: dict[str, list[float]] = {"humans": [], "ppi": []}
    for _ in range(repetitions):
        drawn = draws.choice(len(human), n, replace=False)
        humans_only, ppi, _ = humans_and_ppi(human[drawn], llm[drawn], llm)
        for name, estimate in (("humans", humans_only), ("ppi", ppi)):
            covered[name] += estimate.ci_low <= truth <= estimate.ci_high
            widths[name].append(estimate.ci_high - estimate.ci_low)
    return CoverageRow(
        judge, engine, n, round(truth, 4), round(float(llm.mean()), 4),
        round(covered["humans"] / repetitions, 3), round(covered["ppi"] / repetitions, 3),
        round(float(np.mean(widths["humans"])), 4), round(float(np.mean(widths["ppi"])), 4),
    )


def _per_query(ranking: Rankings, gains: Gains, k: int, metric: str, queries: list[str]) -> np.ndarray:
    return engine_metrics(ranking, gains, k).per_query[metric].reindex(queries).fillna(0.0).to_numpy(dtype=float)


def _pair_seed(judgment: Rating, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{judgment.query_id}:{judgment.product_id}".encode()).hexdigest()[:12], 16)


"""Step 8 of the loop, calibration: how far the judge's labels agree with the humans'.

Accuracy, Cohen's kappa, quadratic-weighted kappa (an adjacent-label slip costs less than irrelevant vs highly
relevant) and Krippendorff's alpha (ordinal), each with a 95% bootstrap interval over queries: pairs of one query
share guidelines and errors, so resampling pairs would overstate the certainty. Beside them, the confusion matrix,
per-label precision and recall, the hard disagreements, and the majority-class baseline that any judge must beat.
"""

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import krippendorff
import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

from rae.annotate.outcome import StepOutcome
from rae.datasets.catalog import Catalog
from rae.datasets.records import Pair, Rating
from rae.errors import RaeError
from rae.labels import LABELS, Label, is_hard_disagreement
from rae.stats import Estimate, estimates, query_bootstrap
from rae.store.schema import JudgmentRow

METRICS = ("accuracy", "kappa", "weighted_kappa", "alpha")


class NothingJudged(RaeError, ValueError):
    pass


@dataclass(frozen=True)
class Compared:
    """A human judgment beside the LLM's label for the same pair.

    ``status`` is ``ok``, ``failed`` (the LLM's output did not parse; no label) or ``missing`` (not judged yet).
    """

    human: Rating
    llm: Label | None
    status: str = "ok"
    reasoning: str | None = None
    title: str = ""


@dataclass
class AgreementReport:
    accuracy: Estimate
    kappa: Estimate
    weighted_kappa: Estimate
    alpha: Estimate
    n_pairs: int
    n_queries: int
    n_failed: int
    n_missing: int
    confusion: dict[str, dict[str, int]]
    per_label: dict[str, dict[str, float]]
    baseline_accuracy: float
    baseline_label: str
    hard_disagreements: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self, max_disagreements: int = 10) -> str:
        return to_markdown(self, max_disagreements)


def side_by_side(judgments: list[Rating], outcomes: dict[Pair, StepOutcome[JudgmentRow]], catalog: Catalog) -> list[Compared]:
    """Each human judgment beside the stored LLM judgment of the same pair."""
    compared = []
    for human in judgments:
        outcome = outcomes[human.pair]
        row = outcome.value
        compared.append(
            Compared(
                human=human,
                llm=Label(row.label) if outcome.ok else None,
                status=outcome.status,
                reasoning=row.reasoning if row is not None else None,
                title=catalog[human.product_id].title,
            )
        )
    return compared


def agreement_report(compared: list[Compared], n_resamples: int = 1000, seed: int = 0) -> AgreementReport:
    """Agreement on the pairs the LLM labelled; failed ones are counted apart, not guessed."""
    judged = [c for c in compared if c.status == "ok"]
    if not judged:
        raise NothingJudged(
            "no pair has both a human label and a stored LLM label for this program and model yet: run `rae annotate` first"
        )
    human = np.array([c.human.label.gain for c in judged])
    llm = np.array([c.llm.gain for c in judged])
    queries = sorted({c.human.query_id for c in judged})
    estimates = _bootstrapped(judged, queries, n_resamples, seed)
    majority_gain = int(np.bincount(human, minlength=3).argmax())
    return AgreementReport(
        **estimates,
        n_pairs=len(judged),
        n_queries=len(queries),
        n_failed=sum(c.status == "failed" for c in compared),
        n_missing=sum(c.status == "missing" for c in compared),
        confusion=_confusion(human, llm),
        per_label=_per_label(human, llm),
        baseline_accuracy=round(float(np.mean(human == majority_gain)), 4),
        baseline_label=str(LABELS[majority_gain]),
        hard_disagreements=[_disagreement(c) for c in judged if is_hard_disagreement(c.human.label, c.llm)],
    )


def agreement_metrics(human: np.ndarray, llm: np.ndarray) -> np.ndarray:
    """accuracy, kappa, weighted kappa, alpha for two aligned arrays of gains (0, 1, 2); NaN where undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        labels = [0, 1, 2]
        return np.array(
            [
                accuracy_score(human, llm),
                cohen_kappa_score(human, llm, labels=labels),
                cohen_kappa_score(human, llm, labels=labels, weights="quadratic"),
                krippendorff_alpha(np.vstack([human, llm])),
            ]
        )


def krippendorff_alpha(reliability: np.ndarray) -> float:
    """Krippendorff's ordinal alpha of a raters x pairs matrix of gains (NaN where a rater did not label a pair)."""
    try:
        return float(krippendorff.alpha(reliability_data=reliability, level_of_measurement="ordinal", value_domain=[0, 1, 2]))
    except (ValueError, ZeroDivisionError):  # one value in all the data: alpha is undefined
        return float("nan")


def _bootstrapped(judged: list[Compared], queries: list[str], n_resamples: int, seed: int) -> dict[str, Estimate]:
    by_query = {q: ([], []) for q in queries}
    for c in judged:
        by_query[c.human.query_id][0].append(c.human.label.gain)
        by_query[c.human.query_id][1].append(c.llm.gain)
    groups = [(np.array(h), np.array(m)) for h, m in by_query.values()]

    def statistic(indices: np.ndarray) -> np.ndarray:
        chosen = [groups[int(i)] for i in indices]
        return agreement_metrics(np.concatenate([h for h, _ in chosen]), np.concatenate([m for _, m in chosen]))

    return estimates(METRICS, *query_bootstrap(len(groups), statistic, n_resamples, seed))


def _confusion(human: np.ndarray, llm: np.ndarray) -> dict[str, dict[str, int]]:
    matrix = confusion_matrix(human, llm, labels=[0, 1, 2])
    return {str(LABELS[i]): {str(LABELS[j]): int(matrix[i, j]) for j in range(3)} for i in range(3)}


def _per_label(human: np.ndarray, llm: np.ndarray) -> dict[str, dict[str, float]]:
    precision, recall, _, support = precision_recall_fscore_support(human, llm, labels=[0, 1, 2], zero_division=0)
    return {
        str(LABELS[i]): {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4), "support": int(support[i])}
        for i in range(3)
    }


def _disagreement(c: Compared) -> dict[str, str]:
    return {
        "query_id": c.human.query_id,
        "query": c.human.query,
        "product_id": c.human.product_id,
        "title": c.title,
        "human": str(c.human.label),
        "esci": c.human.original_label,
        "llm": str(c.llm),
        "reasoning": c.reasoning or "",
    }


def to_markdown(report: AgreementReport, max_disagreements: int = 10) -> str:
    """The agreement table a person reads: metrics with intervals, the baseline, the confusion matrix, the worst cases."""
    lines = [
        f"LLM vs human labels: {report.n_pairs} pairs of {report.n_queries} queries"
        f" ({report.n_failed} failed to parse, {report.n_missing} not judged yet)",
        "",
        "| metric | value | 95% CI (bootstrap over queries) |",
        "| --- | --- | --- |",
    ]
    for name in METRICS:
        estimate: Estimate = getattr(report, name)
        interval = f"{estimate.ci_low:.3f} to {estimate.ci_high:.3f}" if estimate.has_interval else estimate.note
        lines.append(f"| {name} | {estimate.value:.3f} | {interval} |")
    lines.append(f"| majority baseline accuracy (always {report.baseline_label}) | {report.baseline_accuracy:.3f} | kappa 0 |")
    lines += ["", "Confusion (rows: human, columns: LLM)", "", "| human \\ llm | " + " | ".join(map(str, LABELS)) + " |"]
    lines.append("| --- " * (len(LABELS) + 1) + "|")
    for human_label, row in report.confusion.items():
        lines.append(f"| {human_label} | " + " | ".join(str(row[str(llm)]) for llm in LABELS) + " |")
    lines += ["", "| label | precision | recall | human support |", "| --- | --- | --- | --- |"]
    for label, scores in report.per_label.items():
        lines.append(f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['support']} |")
    hard = report.hard_disagreements
    lines += ["", f"Hard disagreements (irrelevant vs highly_relevant): {len(hard)}"]
    for case in hard[:max_disagreements]:
        lines.append(
            f"- {case['query']!r} / {case['product_id']} {case['title'][:60]!r}: human {case['human']} ({case['esci']}), "
            f"LLM {case['llm']}"
        )
    if len(hard) > max_disagreements:
        lines.append(f"- ... and {len(hard) - max_disagreements} more (--json lists them all)")
    return "\n".join(lines)

"""What the judge believes of each pair of an evaluation's pools, and the judge's own spread of each query's metric
that follows (``rae.evaluate.designs``): known before anyone labels, it is what stratified and active draws, and
``rae plan``, use. With a panel of judges beside it, their beliefs are mixed: the spread is then large where the
judges disagree."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score

from rae.config import ConfigError
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.records import Pair
from rae.evaluate.designs import DEFAULT_EPSILON, Beliefs, beliefs_from_labels, judge_spread, mixed_beliefs
from rae.evaluate.evaluation import human_gains_for
from rae.evaluate.metrics import Gains, engine_metrics
from rae.evaluate.stored_run import StoredEvaluation
from rae.labels import LABELS, Label
from rae.store.schema import JudgmentRow
from rae.workspace import Workspace

MIN_PAIRS_FOR_EPSILON = 30


def judge_beliefs(workspace: Workspace, stored: StoredEvaluation, unjudged_as_unsure: bool = True, humans: LabelledSet | None = None) -> Beliefs:
    """Its label probabilities when rae measured them, else its label kept with the probability its agreement with the
    human labels (``humans``, by default today's) on these pools says (or 1 - epsilon); a pair it has no judgment of is
    its mix of labels, or, with ``unjudged_as_unsure`` off (a panel judge a budget stopped part way), left out for the
    others to speak for."""
    human = human_gains_for(stored.queries, humans or workspace.human_labels)
    return _beliefs(_judged(workspace, stored), stored, human, unjudged_as_unsure)


def _beliefs(outcomes: dict[Pair, JudgmentRow], stored: StoredEvaluation, human: Gains, unjudged_as_unsure: bool = True) -> Beliefs:
    """``judge_beliefs`` from the judgments already read."""
    if not outcomes:
        raise ConfigError("the judge has no stored judgments of this evaluation's pools: use --design uniform")
    labels = _gains(outcomes)
    beliefs = beliefs_from_labels(labels, _epsilon(labels, human), stored.pools() if unjudged_as_unsure else None)
    for pair, row in outcomes.items():
        measured = label_probabilities(row.probabilities)
        if measured is not None:
            beliefs[pair.query_id][pair.product_id] = measured
    return beliefs


def _judged(workspace: Workspace, stored: StoredEvaluation) -> dict[Pair, JudgmentRow]:
    """The judge's stored judgments of the evaluation's pools that hold a label."""
    return {pair: outcome.value for pair, outcome in workspace.stored_judgments(stored.pool_pairs()).items() if outcome.ok}


def _gains(outcomes: dict[Pair, JudgmentRow]) -> Gains:
    labels: Gains = {}
    for pair, row in outcomes.items():
        labels.setdefault(pair.query_id, {})[pair.product_id] = Label(row.label).gain
    return labels


def label_probabilities(probabilities: dict[str, float] | None) -> np.ndarray | None:
    """A judgment's stored label probabilities as a belief over the gains (0, 1, 2), or None when rae measured none."""
    measured = np.array([float((probabilities or {}).get(label.value, 0.0)) for label in LABELS])
    return measured / measured.sum() if measured.sum() > 0 else None


def _epsilon(labels: Gains, humans: Gains) -> float:
    """The share of the judge's labels the humans' labels contradict, where both exist, else the default."""
    both = _both_labelled(labels, humans)
    return float(np.mean([a != b for a, b in both])) if len(both) >= MIN_PAIRS_FOR_EPSILON else DEFAULT_EPSILON


def agreement_kappa(judge: Gains, humans: Gains) -> float | None:
    """Cohen's kappa of the judge's labels against the humans' on the pairs both labelled, or None with fewer than
    ``MIN_PAIRS_FOR_EPSILON`` of them or when one label is all either gave (kappa is undefined there)."""
    both = _both_labelled(judge, humans)
    if len(both) < MIN_PAIRS_FOR_EPSILON:
        return None
    judged, human = zip(*both, strict=True)
    if len(set(judged) | set(human)) < 2:
        return None
    return float(cohen_kappa_score(judged, human, labels=[0, 1, 2]))


def _both_labelled(judge: Gains, humans: Gains) -> list[tuple[int, int]]:
    """(the judge's gain, the humans') for every pair both labelled."""
    return [(g, humans[q][p]) for q, labels in judge.items() for p, g in labels.items() if p in humans.get(q, {})]


def row_values(stored: StoredEvaluation, gains: Gains, metric: str) -> dict[str, np.ndarray]:
    """Each engine's per-query metric under ``gains``, and each difference of two (``b - a``), in query order."""
    queries = [q.query_id for q in stored.queries]
    engines = {e: engine_metrics(r, gains, stored.k).per_query[metric].reindex(queries).fillna(0.0).to_numpy(dtype=float)
               for e, r in stored.rankings.items()}
    names = list(engines)
    differences = {f"{b} - {a}": engines[b] - engines[a] for i, a in enumerate(names) for b in names[i + 1 :]}
    return engines | differences


def panel_beliefs(judge: Beliefs, stored: StoredEvaluation, panel: Mapping[str, Workspace], humans: LabelledSet | None = None) -> Beliefs:
    """The evaluation's judge's beliefs (``judge``) mixed with each panel judge's, from their stored judgments of the pools."""
    found = [judge]
    for name, member in panel.items():
        try:
            found.append(judge_beliefs(member, stored, unjudged_as_unsure=False, humans=humans))
        except ConfigError:
            raise ConfigError(f"judge {name} has no stored judgments of this evaluation's pools") from None
    return mixed_beliefs(found)


@dataclass(frozen=True)
class JudgeSpread:
    """The judge's own spread of every row of ``row_values``, and its Cohen's kappa against the human labels its beliefs
    were measured on (what the active design trusts the spread by, ``defensive_share``): one reading of its judgments."""

    rows: dict[str, np.ndarray]
    kappa: float | None


def spreads(workspace: Workspace, stored: StoredEvaluation, metric: str, seed: int = 0,
            panel: Mapping[str, Workspace] | None = None, known: LabelledSet | None = None) -> JudgeSpread:
    """The judge's own spread of every row of ``row_values`` (the panel's, mixed with it, when one is given), from one
    set of redraws. With ``known`` (the human labels a draw's prediction will hold, ``rae.evaluate.corrected``), the
    judge's agreement is measured on them alone and a pair they label is certain: nothing is left to correct there, so
    a design steered by the spread sends no labels for it; and nothing given since moves the spread."""
    outcomes = _judged(workspace, stored)
    human = human_gains_for(stored.queries, known or workspace.human_labels)
    beliefs = _beliefs(outcomes, stored, human)
    if panel:
        beliefs = panel_beliefs(beliefs, stored, panel, known)
    for q, labels in (human if known is not None else {}).items():  # ``human`` is ``known``'s then
        for p in labels.keys() & beliefs.get(q, {}).keys():
            beliefs[q][p] = np.eye(3)[labels[p]]
    names = list(row_values(stored, {}, metric))
    stacked = judge_spread(beliefs, lambda gains: np.concatenate(list(row_values(stored, gains, metric).values())), seed=seed)
    size = len(stored.queries)
    rows = {name: stacked[i * size:(i + 1) * size] for i, name in enumerate(names)}
    return JudgeSpread(rows, agreement_kappa(_gains(outcomes), human))

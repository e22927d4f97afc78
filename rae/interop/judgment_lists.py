"""``rae judgments import`` and ``rae judgments export``: judgment lists between rae's store and the other tools.

Import stores each label as its rater's (the ``--rater`` name, or each judge of a Quepid book), with where it came
from, as a human rater's or, with ``--kind llm``, as another LLM judge's. Every command that reads human labels
(``agreement``, ``optimize`` with ``with_reviews``, the prediction-powered estimates of ``evaluate`` and ``report``,
the review queue) then sees the human ones; ``agreement --raters`` sees them all.

Export writes what the store holds for a split of the labelled set, an evaluation run's pools, or a query set: the
judge's labels (this program and model; its reasoning as the explanation where the format has one), the human
labels, or both as separate raters.
"""

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from rae.datasets.judgment_files import DEFAULT_SCALES, Format, read_judgments, write_judgments
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.rating_scales import rating_scale
from rae.datasets.records import Pair, Rating
from rae.datasets.searchlog import normalize_query, query_id_for
from rae.evaluate.stored_run import load_evaluation
from rae.store.human_labels import latest_ratings, save_ratings
from rae.store.records import judged_pairs_of_queries
from rae.workspace import Workspace

Which = Literal["llm", "human", "both"]


@dataclass
class Moved:
    """What an import or export moved."""

    verb: str
    path: Path
    fmt: str
    labels: int
    raters: list[str]
    pairs: int

    def line(self) -> str:
        return f"{self.verb} {self.labels} labels of {self.pairs} pairs ({', '.join(self.raters) or 'no rater'}) {'from' if self.verb == 'imported' else 'to'} {self.path} ({self.fmt})"


def import_judgments(workspace: Workspace, path: Path, fmt: Format, rater: str, scale: str | None, kind: str = "human") -> Moved:
    labelled = workspace.labelled
    scale_used = rating_scale(scale or DEFAULT_SCALES.get(fmt, "0-2"), workspace.settings.rating_scales)
    labels = read_judgments(path, fmt, scale_used, rater, _query_ids(labelled), _query_texts(labelled))
    save_ratings(workspace.store, labels, f"import:{fmt}:{path.name}", kind)
    return Moved("imported", path, fmt, len(labels), sorted({r.rater for r in labels}), len({(r.query_id, r.product_id) for r in labels}))


def export_judgments(
    workspace: Workspace, path: Path, fmt: Format, which: Which, pairs: list[Pair], scale: str | None, name: str
) -> Moved:
    labels = []
    if which in ("llm", "both"):
        labels += llm_labels(workspace, pairs)
    if which in ("human", "both"):
        labels += human_labels(workspace, pairs)
    write_judgments(path, fmt, labels, rating_scale(scale or DEFAULT_SCALES.get(fmt, "0-2"), workspace.settings.rating_scales), name)
    return Moved("exported", path, fmt, len(labels), sorted({r.rater for r in labels}), len({(r.query_id, r.product_id) for r in labels}))


def pairs_to_export(workspace: Workspace, split: str | None, queries: int | None, per_query: int | None, run_id: str | None, query_set: list | None) -> list[Pair]:
    """The pairs of an evaluation run's pools, or of the queries of a query set that the store judged, or of a split."""
    if run_id is not None:
        stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None if run_id == "latest" else run_id)
        texts = {q.query_id: q.text for q in stored.queries}
        return [Pair(q, texts[q], p) for q, pool in stored.pools().items() for p in sorted(pool)]
    if query_set is not None:
        rows = judged_pairs_of_queries(workspace.store, [q.text for q in query_set])
        return sorted({Pair(*row) for row in rows}, key=lambda p: (p.query_id, p.product_id))
    return workspace.labelled.pairs(split or "all", queries, per_query)


def llm_labels(workspace: Workspace, pairs: list[Pair]) -> list[Rating]:
    """The judge's stored labels of the pairs (this program and model), its reasoning as the explanation."""
    rater = f"{workspace.settings.model.name}:{workspace.describe()['program']}"
    outcomes = workspace.stored_judgments([p for p in pairs if p.product_id in workspace.labelled.catalog])
    return [
        Rating(pair.query_id, pair.query, pair.product_id, outcome.value.label, rater, note=outcome.value.reasoning or "")
        for pair, outcome in outcomes.items()
        if outcome.ok
    ]


def human_labels(workspace: Workspace, pairs: list[Pair]) -> list[Rating]:
    """Every human label of the pairs: the labelled set's (its name as the rater) and every human rater's in the store."""
    wanted = {(p.query_id, p.product_id) for p in pairs}
    labelled = workspace.labelled
    labels = [replace(j, rater=labelled.name) for j in labelled.judgments if (j.query_id, j.product_id) in wanted]
    return labels + [r for r in latest_ratings(workspace.store) if (r.query_id, r.product_id) in wanted]


def _query_ids(labelled: LabelledSet):
    """Query text -> id: the labelled set's id for a query it has (by normalised text), else rae's id for the text."""
    known = {normalize_query(j.query): j.query_id for j in labelled.judgments}
    return lambda text: known.get(normalize_query(text)) or query_id_for(text)


def _query_texts(labelled: LabelledSet):
    known = {j.query_id: j.query for j in labelled.judgments}
    return known.get

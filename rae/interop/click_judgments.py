"""Judgments from clicks, computed the way OpenSearch's Search Relevance Workbench computes its implicit judgments
(``CoecClickModel``: clicks over expected clicks), and stored as a rater of kind ``clicks``.

For each position up to ``max_rank``, the click-through rate of every result shown there (clicks over impressions,
all queries together). For each query and product, its clicks over the clicks its impressions would get at the
highest position it was seen: 1 is clicked as often as any result there, 0 is seen and never clicked. SRW stops at
that score; rae turns it into a label on a named scale (by default ``thresholds:0.5,1``: a product clicked at least
as often as its position predicts is highly relevant, at least half as often acceptable, else irrelevant), keeps the
score as the label's original, and can ask for a least number of impressions before a score counts.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rae.datasets.rating_scales import RatingScale, rating_scale
from rae.datasets.readers import DataFileError
from rae.datasets.records import Rating
from rae.datasets.ubi_events import ResultEvent, UbiLog, read_ubi_log
from rae.interop.judgment_lists import query_ids_of
from rae.labels import LABELS
from rae.store.human_labels import latest_ratings, save_ratings
from rae.studies.human_agreement import RaterAgreement, click_agreement
from rae.workspace import Workspace

RATER = "clicks:coec"
DEFAULT_SCALE = "thresholds:0.5,1"


@dataclass(frozen=True)
class ClickScore:
    query: str
    product_id: str
    clicks: int
    impressions: int
    rank: int  # the highest position it was seen at (0 is the top)
    score: float  # clicks over expected clicks


def coec_scores(events: list[ResultEvent], max_rank: int) -> list[ClickScore]:
    """SRW's COEC: each (query, product)'s clicks over the clicks expected at its best position."""
    shown = [e for e in events if e.action in ("click", "impression") and e.position < max_rank]  # positions from 0
    by_position = Counter((e.position, e.action) for e in shown)
    position_ctr = {p: by_position[(p, "click")] / by_position[(p, "impression")] for p in range(max_rank) if by_position[(p, "impression")]}
    pairs: dict[tuple[str, str], list[ResultEvent]] = defaultdict(list)
    for event in shown:
        pairs[(event.query, event.object_id)].append(event)
    scores = []
    for (query, product), seen in pairs.items():
        clicks = sum(e.action == "click" for e in seen)
        impressions = sum(e.action == "impression" for e in seen)
        rank = min(e.position for e in seen)
        expected = position_ctr.get(rank, 0.0) * impressions
        scores.append(ClickScore(query, product, clicks, impressions, rank, round(clicks / expected, 3) if expected > 0 else 0.0))
    return scores


@dataclass
class ClickJudgments:
    """What ``rae judgments from-clicks`` stored, and from how much of the log."""

    log: str
    ubi: UbiLog
    scores: list[ClickScore]
    labels: list[Rating]
    scale: str
    min_impressions: int
    with_humans: RaterAgreement

    def line(self) -> str:
        clicks = sum(e.action == "click" for e in self.ubi.events)
        impressions = sum(e.action == "impression" for e in self.ubi.events)
        mix = Counter(r.label for r in self.labels)
        shown = ", ".join(f"{mix[label]} {label}" for label in LABELS)
        too_few = len(self.scores) - len(self.labels)
        unshown = "with no impression logged (a click alone)" if self.min_impressions <= 1 else f"with fewer than {self.min_impressions} impressions"
        fewer = f"; {too_few} {unshown} left out" if too_few else ""
        stored = (f"stored {len(self.labels)} click judgments ({RATER}) of {len({r.query_id for r in self.labels})} queries from {self.log}: "
                  f"{clicks} clicks and {impressions} impressions, {self.ubi.span()}; scale {self.scale}: {shown}{fewer}")
        return f"{stored}\n\n{self.with_humans.markdown()}"


def click_labels(scores: list[ClickScore], scale: RatingScale, min_impressions: int, query_id: Callable[[str], str]) -> list[Rating]:
    """The scores as labels of the rater ``clicks:coec``, the score kept as the original and the counts as the note."""
    return [
        Rating(query_id(s.query), s.query, s.product_id, scale.label(s.score), RATER, original_label=f"{s.score:g}",
               note=f"COEC {s.score:g}: {s.clicks} clicks, {s.impressions} impressions, best position {s.rank + 1}")
        for s in scores
        if s.impressions >= min_impressions
    ]


def judgments_from_clicks(
    workspace: Workspace, logs: list[Path], max_rank: int = 20, scale: str = DEFAULT_SCALE, min_impressions: int = 1, fmt: str | None = None,
) -> ClickJudgments:
    """Read the logs, score every (query, product) seen, and store the scores as the rater ``clicks:coec``'s labels.

    A rerun stores the labels again as the rater's latest (what rae reads is each rater's latest label of a pair)."""
    ubi = read_ubi_log(logs, fmt)
    named = rating_scale(scale, workspace.settings.rating_scales)
    scores = coec_scores(ubi.events, max_rank)
    names = ", ".join(str(p) for p in logs)
    if not scores:
        raise DataFileError(names, None, f"no impression or click on a result (event_attributes.object and position) up to position {max_rank}")
    labels = click_labels(scores, named, min_impressions, query_ids_of(workspace.labelled))
    save_ratings(workspace.store, labels, f"clicks:coec:{names}", kind="clicks")
    with_humans = click_agreement(workspace.labelled, latest_ratings(workspace.store), labels)
    return ClickJudgments(names, ubi, scores, labels, named.name, min_impressions, with_humans)

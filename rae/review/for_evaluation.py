"""``rae review queue --for-evaluation``: which queries humans should label so that an evaluation's numbers can be
corrected by them, drawn by a design rae records (``rae.evaluate.designs``), and the queue of their pairs.

The draw is random, so that the correction is unbiased whatever the design: ``uniform`` gives every query the same
chance; ``stratified`` and ``active`` send more labels where the judge's own spread of the query's metric is large
(for an evaluation of two or more engines, of the difference between its first two: a gate's baseline and
candidate), the active one only as far as the judge's agreement with the humans' labels on the pools says its
spread can be trusted (``defensive_share``). A pair humans labelled before the draw is certain there: the prediction
the drawn queries correct holds its label (``rae.evaluate.corrected``), so nothing is left to correct on it; the
stratified and active designs take the queries whose pools those labels cover whole as a stratum of their own,
whole, and draw ``--queries`` among the others. Each drawn query's probability is stored, and the estimates weight it
by the inverse. Every pair of a drawn query's pool that has no human label yet is queued: a query counts as labelled
once its whole pool is. The page does not show the judge's label for these pairs, so that the humans' labels stay
independent of it.

With ``--judges a,b`` (a panel named under ``[judges.<name>]``) the stratified and active designs are steered by the
panel as well: each of its judges judges the evaluation's pools (through the store, so only what it has not judged
is paid for), and the spread is that of their beliefs mixed with the evaluation's judge's, large where they disagree.

A new draw from the same evaluation replaces the previous one (the probabilities of two draws do not combine); the
same command again (same design, same seed) draws the same queries and queues what their pools still miss, which is
how a candidate's new products get labelled.
"""

from dataclasses import dataclass, field
from typing import Literal

from rae.config import ConfigError
from rae.datasets.labelled_set import LabelledSet
from rae.evaluate.corrected import covered_whole
from rae.evaluate.designs import ACTIVE, KNOWN, Draw, defensive_share, draw, even_share_said
from rae.evaluate.evaluation import human_gains_for
from rae.evaluate.judge_beliefs import spreads
from rae.evaluate.stored_run import StoredEvaluation, drawn_for
from rae.store.review_items import Item, add_items
from rae.store.samples import record_sample
from rae.studies.panel import annotate_panel
from rae.workspace import Workspace

Design = Literal["uniform", "stratified", "active"]
Strata = Literal["judge", "band"]


@dataclass
class Drawn:
    run_id: str
    drawn: Draw
    queue: str
    target: str
    queued: int = 0
    already_labelled: int = 0
    panel: dict[str, str] = field(default_factory=dict)  # judge -> what it judged of the pools
    kappa: float | None = None  # the judge's agreement with the humans' labels, which the active draw trusted its spread by
    replaced: Draw | None = None  # the earlier draw of the same queries this one took the place of

    def _serving(self) -> str:
        if self.drawn.design == "uniform":
            return ""
        steered = f", steered by the judges {', '.join(f'{n} ({what})' for n, what in self.panel.items())}" if self.panel else ""
        return f", for {self.target}{steered}"

    def _even_share(self) -> str:
        """How far the active draw followed the judge's spread: the share of its probability spread evenly, and why."""
        if self.drawn.design != ACTIVE:
            return ""
        return f"; {even_share_said(self.kappa)}"

    def _replacing(self) -> str:
        """What became of the draw this one replaced: its probabilities do not combine with these, its labels stay."""
        old = self.replaced
        if old is None:
            return ""
        when = f" of {old.made_at:%Y-%m-%d %H:%M} UTC" if old.made_at is not None else ""
        return (f"; it replaces the earlier draw{when} ({old.design}, {old.size()} queries), whose probabilities do not combine with "
                "these: the labels given for it are kept, and count as given before this draw")

    def line(self) -> str:
        counts = [self.drawn.strata[q] for q in self.drawn.draws if self.drawn.strata[q] != KNOWN]
        by_stratum = ", ".join(f"{s} {counts.count(s)}" for s in dict.fromkeys(counts)) or "none left to draw"
        known = sum(s == KNOWN for s in self.drawn.strata.values())
        census = f"; the {known} queries whose pools humans labelled whole before are taken whole" if known else ""
        return (
            f"drew {self.drawn.size()} queries of evaluation {self.run_id} ({self.drawn.design}{self._serving()}: {by_stratum}{census}{self._even_share()}); "
            f"queued {self.queued} pairs in {self.queue!r} ({self.already_labelled} already had a human label){self._replacing()}"
        )


def draw_for_evaluation(workspace: Workspace, stored: StoredEvaluation, n: int, design: Design, queue: str, seed: int = 0,
                        strata: Strata = "judge", panel: dict[str, Workspace] | None = None, budget_usd: float | None = None) -> Drawn:
    query_ids = [q.query_id for q in stored.queries]
    if not 1 <= n <= len(query_ids):
        raise ConfigError(f"--queries must be between 1 and the evaluation's {len(query_ids)} queries (got {n})")
    if panel and (design == "uniform" or strata == "band"):
        raise ConfigError("--judges steers a draw by the judges' spread: --design stratified (by the judge) or active")
    engines = list(stored.rankings)
    target = f"{engines[1]} - {engines[0]}" if len(engines) > 1 else engines[0]
    bands, judged = None, {}
    if design != "uniform" and strata == "band":
        bands = {q.query_id: q.stratum for q in stored.queries}
        if not any(bands.values()):
            raise ConfigError("these queries carry no frequency band (they did not come from a search log): use --strata judge")
    if panel:
        judged = _panel_judges_pools(panel, stored, budget_usd)

    pools = stored.pools()

    def steered(labels: LabelledSet) -> tuple[Draw, float | None]:
        """The draw, its design steered by the judge's spread once ``labels`` settle their pairs, the queries whose
        pools they cover whole known; and, for the active design, the judge's kappa against those labels, which sets
        how far the draw follows the spread."""
        spread, kappa = None, None
        if design != "uniform":
            judge = spreads(workspace, stored, f"ndcg@{stored.k}", seed, panel, labels)
            spread, kappa = judge.rows[target], judge.kappa if design == ACTIVE else None
        known = covered_whole(pools, human_gains_for(stored.queries, labels))
        return draw(design, query_ids, n, spread, bands, seed, known, defensive_share(kappa)), kappa

    earlier = drawn_for(workspace.store, stored.population)
    drawn, kappa = steered(workspace.human_labels_before(earlier.made_at)) if earlier is not None and earlier.made_at is not None else (None, None)
    replaced = None
    if drawn is not None and drawn.same_as(earlier):
        # The same command again: the same draw, as it was steered then, keeps its time, so the labels given for its
        # queries since stay on the humans' side and do not move it.
        drawn.made_at = earlier.made_at
    else:
        drawn, kappa = steered(workspace.human_labels)
        record_sample(workspace.store, stored.population, stored.run_id, drawn.rows())
        replaced = earlier
    result = Drawn(stored.run_id, drawn, queue, target, panel=judged, kappa=kappa, replaced=replaced)
    _queue(workspace, stored, result)
    return result


def _panel_judges_pools(panel: dict[str, Workspace], stored: StoredEvaluation, budget_usd: float | None) -> dict[str, str]:
    """Each panel judge judges every pair of the pools (what the store holds is not paid again): what each came to."""
    summaries = annotate_panel(panel, stored.pool_pairs(), budget_usd=budget_usd)
    for name, s in summaries.items():
        if s.judged_nothing and s.stopped_by_budget:
            raise ConfigError(f"the budget stopped judge {name} before it judged any pair of the pools: rerun with more --budget "
                              "(what it paid for is kept)")
    return {name: f"{s.judged} of {s.pairs} pairs" + (", stopped by the budget" if s.stopped_by_budget else "") for name, s in summaries.items()}


def _queue(workspace: Workspace, stored: StoredEvaluation, drawn: Drawn) -> None:
    """Every pair of a drawn query's pool that no human has labelled, in the queue, at its end."""
    human = workspace.human_labels
    labelled = {(j.query_id, j.product_id) for j in human.judgments}
    texts = {q.query_id: q.text for q in stored.queries}
    pools = stored.pools()
    pairs = [(q, p) for q in drawn.drawn.draws for p in sorted(pools[q])]
    todo = [(q, p) for q, p in pairs if (q, p) not in labelled and p in human.catalog]
    drawn.already_labelled = len(pairs) - len(todo)
    d = drawn.drawn
    items = [Item(q, texts[q], p, "evaluation", f"drawn for evaluation {stored.run_id} ({d.design}, stratum {d.strata[q]}, p={d.probabilities[q]:.3f})")
             for q, p in todo]
    drawn.queued = len(add_items(workspace.store, drawn.queue, items))

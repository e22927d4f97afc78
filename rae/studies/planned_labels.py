"""``rae ppi-check``'s third table: how many human-labelled queries a decisive gate needs under each design, planned
from the whole population (every query's human labels known, as ``rae plan`` would plan them from a pilot that large).

For the difference of the first two engines and each judge: the width that decides a gate at the margin (twice the
distance from the true difference to -margin), the queries each design needs for it (``rae.evaluate.plan``), and the
most a design could save that read the judge's own spread, or (which no design can) each query's true residual
(``spread_ceiling`` of either).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.evaluate.metrics import Gains
from rae.evaluate.plan import COLUMNS, Pilot, PlanRow, decisive_width, plan_row
from rae.evaluate.ppi import ACTIVE, STRATIFIED
from rae.retrieve.rankings import Rankings
from rae.studies.ppi_coverage import StudiedJudge, Target, targets_of


@dataclass
class GatePlans:
    target: str
    margin: float
    queries: int
    rows: dict[str, PlanRow] = field(default_factory=dict)  # judge -> its plan
    ceilings: dict[str, float] = field(default_factory=dict)  # judge -> the most a design by its spread could save
    oracles: dict[str, float] = field(default_factory=dict)  # judge -> the most a design knowing each residual could save

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "margin": self.margin, "queries": self.queries, "ceilings": self.ceilings, "oracles": self.oracles,
                "rows": {j: {**vars(r), "saving_vs_ppi": {d: r.saving(d) for d in (STRATIFIED, ACTIVE)}} for j, r in self.rows.items()}}

    def markdown(self) -> str:
        lines = [f"Human-labelled queries a decisive gate at margin {self.margin:g} needs on {self.target} ({self.queries} queries), by design",
                 "", "| judge | width | " + " | ".join(COLUMNS) + " | stratified saves | active saves | the spread could save | the residuals could save |",
                 "| --- " * (len(COLUMNS) + 6) + "|"]
        for judge, r in self.rows.items():
            cells = " | ".join(r.cell(c) for c in COLUMNS)
            saves = " | ".join("n/a" if r.saving(d) is None else f"{r.saving(d):.0%}" for d in (STRATIFIED, ACTIVE))
            lines.append(f"| {judge} | {r.width:.3f} | {cells or r.note} | {saves} | {self.ceilings.get(judge, float('nan')):.0%} | {self.oracles.get(judge, float('nan')):.0%} |")
        return "\n".join(lines)


def gate_plans(lists: dict[str, Rankings], truth_gains: Gains, judges: dict[str, StudiedJudge], k: int, margin: float, seed: int = 0) -> GatePlans | None:
    targets = [t for t in targets_of(list(lists)) if t.second is not None]
    if not targets:
        return None
    target: Target = targets[0]
    metric = f"ndcg@{k}"
    queries = sorted(next(iter(lists.values())))
    human = target.values(lists, truth_gains, k, metric, queries)
    plans = GatePlans(target.name, margin, len(queries))
    everyone = np.arange(len(queries))
    for judge, studied in judges.items():
        spread = studied.spread(lists, lambda g: target.values(lists, g, k, metric, queries), seed)
        pilot = Pilot(target.values(lists, studied.gains, k, metric, queries), spread, everyone, human, difference=True)
        plans.rows[judge] = plan_row(target.name, pilot, decisive_width(float(np.mean(human)), margin, 0.05), 0.0, 0.0)
        plans.ceilings[judge] = spread_ceiling(spread)
        residual = pilot.residual()  # every query is the pilot here: the true residuals
        plans.oracles[judge] = spread_ceiling(np.abs(residual - residual.mean()))
    return plans


def spread_ceiling(spread: np.ndarray) -> float:
    """The share of a uniform draw's labels a design by the judge's spread could save at most: each query drawn with
    probability in proportion to its spread, were the spread each query's residual spread exactly (the variance
    then falls from mean(s^2) to mean(s)^2). Where the judge's spread is alike on every query (a judge that errs on any
    pair alike), no design that reads it can save much, whatever the true residuals would allow."""
    spread = np.asarray(spread, dtype=float)
    square = float(np.mean(spread**2))
    return round(1 - float(np.mean(spread)) ** 2 / square, 3) if square > 0 else 0.0

"""``rae ppi-check``'s second study: a candidate whose lists leave the labelled pools, as in a real release.

Humans labelled the products an older engine (the baseline) returned; the candidate returns others. On the bundled
set the truth stays known: every list is condensed to the products humans labelled in the bundled set, and the
"existing" labels are only those of the baseline's lists (its pool). The truth is the humans' metric over every query,
with every label. The estimates of candidate minus baseline set side by side:

- **complete queries, weight one** (rae before this study): the judge corrected by the queries whose pools the
  existing labels happen to cover, as if they were a random sample. They are the queries where the candidate stayed
  inside the old pool, selected by the very thing measured;
- **existing labels, condensed lists**: the humans' metric on the products they labelled, over every query (a
  check; ``rae.evaluate.found_labels``);
- **the judge alone**;
- **a draw by each design**, its pools labelled whole after the engines retrieved (repeated many times), correcting
  the judge's metric, and again correcting the judge's metric with the existing labels in place of its own (what rae
  does with the labels given before a draw, ``rae.evaluate.corrected``), the draw steered by that prediction's spread
  and, stratified, taking the queries the existing labels cover whole as a census beside its n.

Each row says how often its interval covers the truth and how often a gate at the margin would pass the candidate.
A second table plans, as ``rae plan`` would from a pilot of every query, the human-labelled queries each design needs
to know the difference within a given width, correcting the judge's labels or the judge's with the existing labels in
place (then from the queries the existing labels do not cover whole: the others have nothing to correct).
"""

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rae.evaluate.designs import DESIGNS, UNCHECKED_SHARE, defensive_share
from rae.evaluate.found_labels import mean_interval
from rae.evaluate.judge_beliefs import agreement_kappa
from rae.evaluate.metrics import Gains
from rae.evaluate.plan import COLUMNS, Pilot, PlanRow, plan_row
from rae.evaluate.ppi import ACTIVE, DIFFERENCE_RANGE, STRATIFIED, UNIFORM, Sample, humans_and_ppi
from rae.evaluate.verdicts import PASS, decide
from rae.retrieve.rankings import Rankings
from rae.stats import Estimate, mean_with_ci
from rae.studies.ppi_coverage import StudiedJudge, drawn_sample, per_query

JUDGE_ALONE, HOLDING = "the judge's labels", "the judge's, holding the existing labels"
HOLDING_ROWS = ", the judge holding the existing labels"  # what a draw row correcting that prediction adds to its name


@dataclass(frozen=True)
class PoolRow:
    judge: str
    estimate: str
    n: int | None  # human-labelled queries (None: not a draw)
    truth: float
    mean: float
    coverage: float
    passes: float  # share of repetitions a gate at the margin passes
    width: float


@dataclass
class PoolStudy:
    baseline: str
    candidate: str
    metric: str
    queries: int
    margin: float
    repetitions: int
    left_pool: float  # share of the candidate's condensed top-k products outside the baseline's pool
    complete: int  # queries the existing labels cover whole
    rows: list[PoolRow] = field(default_factory=list)
    plan_width: float = 0.05
    plans: dict[str, dict[str, PlanRow]] = field(default_factory=dict)  # judge -> what is corrected -> its plan

    def as_dict(self) -> dict[str, Any]:
        plans = {j: {what: {**vars(r), "saving_vs_ppi": r.saving(STRATIFIED)} for what, r in by.items()} for j, by in self.plans.items()}
        return {**{k: v for k, v in vars(self).items() if k not in ("rows", "plans")}, "rows": [vars(r) for r in self.rows], "plans": plans}

    def _plan_markdown(self) -> str:
        lines = [f"Human-labelled queries to know {self.candidate} minus {self.baseline} within a 95% interval {self.plan_width:.3f} wide, "
                 "by design, correcting the judge's labels or the judge's with the existing labels in place",
                 "", "| judge | corrects | " + " | ".join(COLUMNS) + " | the best design's, against the judge's labels and a uniform draw |", "| --- " * (len(COLUMNS) + 3) + "|"]
        for judge, by in self.plans.items():
            plain = by[JUDGE_ALONE].queries.get(UNIFORM)
            for what, r in by.items():
                cells = " | ".join(r.cell(c) for c in COLUMNS)
                best = r.labelled(design) if (design := r.best()) is not None else None
                saved = 1 - best / plain if plain and best is not None else None
                fewer = "n/a" if saved is None else f"{best} ({abs(saved):.0%} {'fewer' if saved >= 0 else 'more'})"
                lines.append(f"| {judge} | {what} | {cells or r.note} | {fewer} |")
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [
            f"When the candidate leaves the labelled pools: {self.candidate} minus {self.baseline} on {self.metric}, {self.queries} queries; "
            f"existing labels cover {self.baseline}'s lists only ({self.left_pool:.0%} of {self.candidate}'s products lie outside them; "
            f"{self.complete} queries are covered whole); draws repeated {self.repetitions} times; a gate at margin {self.margin:g}",
            "",
            "| judge | estimate | n | truth | mean estimate | coverage | passes the gate | mean width |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            lines.append(f"| {r.judge} | {r.estimate} | {'' if r.n is None else r.n} | {r.truth:+.3f} | {r.mean:+.3f} | {r.coverage:.3f} | "
                         f"{r.passes:.3f} | {r.width:.3f} |")
        return "\n".join(lines) + ("\n\n" + self._plan_markdown() if self.plans else "")


def partial_pool_study(lists: dict[str, Rankings], truth_gains: Gains, judges: dict[str, StudiedJudge], baseline: str, candidate: str, k: int,
                       sizes: tuple[int, ...] = (10, 20), repetitions: int = 1000, margin: float = 0.06, seed: int = 0,
                       plan_width: float = 0.05) -> PoolStudy:
    metric = f"ndcg@{k}"
    queries = sorted(lists[baseline])
    old_pool = {q: set(lists[baseline][q][:k]) for q in queries}
    existing = {q: {p: g for p, g in truth_gains.get(q, {}).items() if p in old_pool[q]} for q in queries}
    outside = sum(p not in old_pool[q] for q in queries for p in lists[candidate][q][:k])
    returned = sum(len(lists[candidate][q][:k]) for q in queries)
    complete = [i for i, q in enumerate(queries) if set(lists[candidate][q][:k]) <= old_pool[q]]
    study = PoolStudy(baseline, candidate, metric, len(queries), margin, repetitions, outside / max(returned, 1), len(complete), plan_width=plan_width)
    both = {e: lists[e] for e in (baseline, candidate)}

    def difference(gains: Gains) -> np.ndarray:
        return per_query(lists[candidate], gains, k, metric, queries) - per_query(lists[baseline], gains, k, metric, queries)

    human = difference(truth_gains)
    truth = float(human.mean())
    condensed_existing = {name: {q: [p for p in lists[name][q][:k] if p in existing[q]] for q in queries} for name in (baseline, candidate)}
    found = per_query(condensed_existing[candidate], existing, k, metric, queries) - per_query(condensed_existing[baseline], existing, k, metric, queries)
    touched = [i for i, q in enumerate(queries) if condensed_existing[candidate][q] and condensed_existing[baseline][q]]
    for name, studied in judges.items():
        judge = difference(studied.gains)
        selected = Sample.uniform(complete, len(queries))
        _, old_rule, _ = humans_and_ppi(judge, human[complete], selected, difference=True)
        study.rows += [
            _once(name, "complete queries, weight one (the old rule)", old_rule, truth, margin),
            _once(name, "existing labels, condensed lists (a check)", mean_interval(found[touched], DIFFERENCE_RANGE), truth, margin),
            _once(name, "the judge alone", mean_with_ci(judge), truth, margin),
        ]
        holding = studied.holding(existing)
        predictions = {"": (judge, studied.spread(both, difference, seed)),
                       HOLDING_ROWS: (difference(holding.gains), holding.spread(both, difference, seed))}
        left = np.array([i for i in range(len(queries)) if i not in set(complete)])  # what the existing labels leave to correct
        census = {"": np.array([], dtype=int), HOLDING_ROWS: np.array(complete, dtype=int)}  # what the stratified and active designs take whole
        # The active design trusts the judge's spread as far as the labels given before the draw say it agrees with them.
        even = {"": UNCHECKED_SHARE, HOLDING_ROWS: defensive_share(agreement_kappa(studied.gains, existing))}
        study.plans[name] = {
            what: plan_row(f"{candidate} - {baseline}", Pilot(prediction, spread, pilot, human[pilot], difference=True, known=census[rows],
                                                              even_share=even[rows]),
                           plan_width, 0.0, 0.0)
            for what, rows, (prediction, spread), pilot in zip((JUDGE_ALONE, HOLDING), predictions, predictions.values(),
                                                               (np.arange(len(queries)), left), strict=True)
        }
        for n in sizes:
            for what, (prediction, spread) in predictions.items():
                rng = np.random.default_rng([seed, n])
                known = [queries[i] for i in census[what]]
                for design in DESIGNS:
                    row = _drawn_row(name, design, n, prediction, human, spread, queries, repetitions, margin, rng, known, even[what])
                    study.rows.append(replace(row, estimate=row.estimate + what))
    return study


def _once(judge: str, what: str, estimate: Estimate, truth: float, margin: float) -> PoolRow:
    covered = float(estimate.ci_low <= truth <= estimate.ci_high)
    return PoolRow(judge, what, None, round(truth, 4), round(estimate.value, 4), covered, float(decide(estimate, margin) == PASS),
                   round(estimate.ci_high - estimate.ci_low, 4))


def _drawn_row(judge: str, design: str, n: int, llm: np.ndarray, human: np.ndarray, spread: np.ndarray, queries: list[str], repetitions: int,
               margin: float, rng: np.random.Generator, known: list[str], even_share: float) -> PoolRow:
    truth, values, covered, passed, widths = float(human.mean()), [], 0, 0, []
    for _ in range(repetitions):
        sample = drawn_sample(design, queries, n, spread, rng, known, even_share)
        _, ppi, _ = humans_and_ppi(llm, human[sample.positions], sample, difference=True)
        values.append(ppi.value)
        covered += ppi.ci_low <= truth <= ppi.ci_high
        passed += decide(ppi, margin) == PASS
        widths.append(ppi.ci_high - ppi.ci_low)
    drawn = f"{'an' if design == ACTIVE else 'a'} {design} draw, labelled whole"
    return PoolRow(judge, drawn, n, round(truth, 4), round(float(np.mean(values)), 4), round(covered / repetitions, 3),
                   round(passed / repetitions, 3), round(float(np.mean(widths)), 4))

"""``rae gate``: a release decision a CI pipeline can act on. Is the candidate engine worse than the baseline by
more than a margin?

Non-inferiority, on the 95% interval of candidate minus baseline (the chosen metric, per query, over the gate's
queries): **pass** when its lower end is above minus the margin, **fail** when its upper end is below minus the
margin, **inconclusive** when it straddles minus the margin. The interval is the judge's corrected by a sample of
queries humans labelled whole, when there is one rae can vouch for (a recorded draw, ``rae.evaluate.corrected``);
else it is the judge's alone, and the verdict says so.

Human labels that were not drawn (the bundled set, imports of older pools) never correct the judge, but they are
evidence: when the humans' own labels, on the products they labelled (``rae.evaluate.found_labels``), show the
candidate worse by more than the margin, the gate does not pass. Their interval below minus the margin fails it;
their estimate below it makes a pass inconclusive. A correction still waiting for labels of some drawn queries cannot
pass either. Each reason is said, with the candidate's share of products no human labelled and the command that
gets them labelled.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from rae.evaluate.corrected import per_query_values
from rae.evaluate.evaluation import Evaluation
from rae.evaluate.found_labels import PoolCoverage, found_labels
from rae.evaluate.verdicts import FAIL, INCONCLUSIVE, PASS, decide, judged_by_humans
from rae.stats import Estimate, mean_with_ci

EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
USAGE_ERROR = 2
LOSERS = 5


@dataclass(frozen=True)
class QueryLoss:
    """A query the candidate did worse on (under the humans' labels where they labelled it whole, else the judge's), with
    where the report shows it."""

    query_id: str
    text: str
    baseline: float
    candidate: float
    link: str

    @property
    def difference(self) -> float:
        return self.candidate - self.baseline


@dataclass(frozen=True)
class DifferenceInterval:
    """Candidate minus baseline: the interval a verdict rests on, which one it is, and the judge's alone beside it."""

    interval: Estimate
    basis: str
    judge_alone: Estimate
    human_queries: int
    design: str | None = None
    provisional: bool = False


@dataclass(frozen=True)
class HumansCheck:
    """The humans' own labels where they exist, on the difference: what they show, over how many queries."""

    estimate: Estimate
    queries: int

    def line(self) -> str:
        e = self.estimate
        return (f"the humans' own labels, on the {self.queries} queries where they labelled any of the results (condensed lists; not a "
                f"random sample of the pools), put it at {e.value:+.4f} ({e.ci_low:+.4f} to {e.ci_high:+.4f})")


@dataclass
class Verdict:
    baseline: str
    candidate: str
    metric: str
    margin: float
    decision: str
    difference: DifferenceInterval
    queries: int
    humans: HumansCheck | None = None
    reasons: list[str] = field(default_factory=list)  # what moved the decision away from the interval's, in order
    coverage: PoolCoverage | None = None  # how much of the candidate's top k humans labelled
    label_command: str = ""
    losers: list[QueryLoss] = field(default_factory=list)
    report: str = ""

    @property
    def interval(self) -> Estimate:
        return self.difference.interval

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def paragraph(self) -> str:
        i, d = self.interval, self.difference
        what = f"{self.candidate} minus {self.baseline} on {self.metric}: {i.value:+.4f} (95% interval {i.ci_low:+.4f} to {i.ci_high:+.4f}, {d.basis})"
        on_interval = decide(i, self.margin)
        reason = {
            PASS: f"the interval's lower end is above -{self.margin:g}, so the candidate loses less than the margin, if anything",
            FAIL: f"the interval's upper end is below -{self.margin:g}, so the candidate loses more than the margin",
            INCONCLUSIVE: f"the interval straddles -{self.margin:g}" + (
                "" if self.decision == FAIL else f": label more queries (rae plan --margin {self.margin:g}) or evaluate more queries to decide"),
        }[on_interval]
        text = f"{self.decision.upper()}: {what}; {reason}."
        if not d.basis.startswith("the judge alone"):
            text += f" The judge alone would say {d.judge_alone.value:+.4f} ({d.judge_alone.ci_low:+.4f} to {d.judge_alone.ci_high:+.4f})."
        for line in self.reasons:
            text += f" {line}"
        if self.humans is not None and not self.reasons:
            text += f" For comparison, {self.humans.line()}."
        if self.coverage is not None and self.coverage.unlabelled_products and self.label_command:
            text += f" {self.coverage.line()}; to correct the judge with labels rae can vouch for: {self.label_command}."
        return text

    def as_dict(self) -> dict[str, Any]:
        d = self.difference
        return {
            "decision": self.decision, "exit_code": self.exit_code, "baseline": self.baseline, "candidate": self.candidate,
            "metric": self.metric, "margin": self.margin, "difference": vars(self.interval), "basis": d.basis, "design": d.design,
            "provisional": d.provisional, "queries": self.queries, "human_labelled_queries": d.human_queries, "judge_alone": vars(d.judge_alone),
            "humans_check": None if self.humans is None else {**vars(self.humans.estimate), "queries": self.humans.queries},
            "reasons": self.reasons, "candidate_coverage": None if self.coverage is None else vars(self.coverage), "label_command": self.label_command,
            "lost_most": [{**vars(q), "difference": round(q.difference, 4)} for q in self.losers], "report": self.report,
            "verdict": self.paragraph(),
        }

    def markdown(self) -> str:
        """A summary for CI pages (GitHub Actions' step summary, a GitLab comment)."""
        lines = [f"### rae gate: {self.decision.upper()}", "", self.paragraph(), ""]
        if self.losers:
            lines += ["| query | baseline | candidate | difference |", "| --- | --- | --- | --- |"]
            lines += [f"| [{q.text}]({q.link}) | {q.baseline:.3f} | {q.candidate:.3f} | {q.difference:+.3f} |" for q in self.losers]
        return "\n".join(lines) + "\n"

    def junit_xml(self) -> str:
        """One test case; a fail is a failure and an inconclusive verdict is skipped, so CI shows each as it is."""
        name = quoteattr(f"{self.candidate} not worse than {self.baseline} by {self.margin:g} on {self.metric}")
        body = {
            PASS: "",
            FAIL: f"<failure message={quoteattr(self.paragraph())}/>",
            INCONCLUSIVE: f"<skipped message={quoteattr(self.paragraph())}/>",
        }[self.decision]
        failures, skipped = int(self.decision == FAIL), int(self.decision == INCONCLUSIVE)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites><testsuite name="rae gate" tests="1" failures="{failures}" skipped="{skipped}">'
            f'<testcase classname="rae.gate" name={name}>{body}<system-out>{escape(self.paragraph())}</system-out></testcase>'
            "</testsuite></testsuites>\n"
        )


def weigh(difference: DifferenceInterval, humans: HumansCheck | None, margin: float) -> tuple[str, list[str]]:
    """The decision and what moved it: the interval's, no pass on a provisional correction, then the humans' own
    labels where they contradict it."""
    decision, reasons = decide(difference.interval, margin), []
    if decision == PASS and difference.provisional:
        decision = INCONCLUSIVE
        reasons.append("It is not a pass yet: some drawn queries still miss human labels, and the ones done may be the easy ones.")
    said = judged_by_humans(humans.estimate, margin) if humans is not None else None
    if said == FAIL and decision != FAIL:
        decision = FAIL
        reasons.append(f"But {humans.line()}: below -{margin:g}, so the candidate loses more than the margin by the humans' own labels.")
    elif said == INCONCLUSIVE and decision == PASS:
        decision = INCONCLUSIVE
        reasons.append(f"But {humans.line()}: below -{margin:g}, which the interval cannot overrule; it is not a pass.")
    return decision, reasons


def gate_verdict(evaluation: Evaluation, baseline: str, candidate: str, metric: str, margin: float, report_dir: Path | None = None,
                 run_id: str = "") -> Verdict:
    """The verdict on an evaluation of both engines."""
    queries = [q.query_id for q in evaluation.queries]
    judge = per_query_values(evaluation.metrics[candidate], metric, queries) - per_query_values(evaluation.metrics[baseline], metric, queries)
    difference = corrected_difference(evaluation, baseline, candidate, metric, judge)
    rankings = {run.name: run.rankings for run in evaluation.engines if run.name in (baseline, candidate)}
    found = found_labels({baseline: rankings[baseline], candidate: rankings[candidate]}, evaluation.human_gains, metric, evaluation.k)
    humans = None
    if found is not None and found.comparisons[(baseline, candidate)].has_interval:
        humans = HumansCheck(found.comparisons[(baseline, candidate)], sum(1 for q in queries if q in found.per_query[candidate]))
    decision, reasons = weigh(difference, humans, margin)
    stopped = [run for run in evaluation.engines if run.annotation.stopped_by_budget]
    if stopped and decision != FAIL:
        judged = sum(run.annotation.judged for run in stopped)
        asked = sum(run.annotation.pairs for run in stopped)
        decision = INCONCLUSIVE
        reasons.insert(0, f"The budget stopped the judging before every pair was judged ({judged} of {asked}): the judge's numbers cover only "
                          "those; rerun with more budget (the pairs judged are kept).")
    coverage = found.coverage[candidate] if found is not None else None
    command = f"rae review queue --for-evaluation {run_id or 'latest'} --queries 20, then rae review serve" if coverage is not None else ""
    return Verdict(baseline, candidate, metric, margin, decision, difference, len(queries), humans, reasons, coverage, command,
                   _losers(evaluation, baseline, candidate, metric, report_dir), str(report_dir or ""))


def corrected_difference(evaluation: Evaluation, baseline: str, candidate: str, metric: str, judge: np.ndarray) -> DifferenceInterval:
    """Candidate minus baseline, corrected by the evaluation's draw when it has one, else the judge's alone."""
    judge_alone = mean_with_ci(judge)
    corrected = evaluation.corrected
    if corrected is None or corrected.design is None:
        return DifferenceInterval(judge_alone, "the judge alone: no queries were drawn for human labelling, so it is as good as the judge",
                                  judge_alone, 0)
    queries = [q.query_id for q in evaluation.queries]
    human = per_query_values(corrected.human_metrics[candidate], metric, queries) - per_query_values(corrected.human_metrics[baseline], metric, queries)
    predicted = [corrected.predicted(engine, metric, queries) for engine in (candidate, baseline)]
    prediction = None if predicted[0] is None or predicted[1] is None else predicted[0] - predicted[1]
    estimates = corrected.estimates(judge, human, queries, difference=True, predictor=prediction)
    taken = len(corrected.taken_whole())
    if not estimates.ppi.has_interval:
        basis = f"the judge alone: {len(corrected.labelled_queries) - taken} drawn queries are labelled whole, too few to correct it"
        return DifferenceInterval(judge_alone, basis, judge_alone, len(corrected.labelled_queries), corrected.design, corrected.provisional)
    holding = f" (holding the {corrected.known_pairs} human labels given before the draw)" if prediction is not None else ""
    census = f", beside the {taken} queries labelled whole before the draw, taken whole" if taken else ""
    basis = (f"the humans' own labels, which covered the pools of all {len(queries)} queries whole before the draw: known exactly, no judge needed"
             if corrected.known_everywhere() else
             f"the judge on {len(queries)} queries{holding} corrected by {estimates.n_human - taken} drawn by the {corrected.design} design and "
             f"labelled whole{census}" + (f", {len(corrected.incomplete)} more drawn still to label" if corrected.provisional else ""))
    return DifferenceInterval(estimates.ppi, basis, judge_alone, estimates.n_human, corrected.design, corrected.provisional)


def _losers(evaluation: Evaluation, baseline: str, candidate: str, metric: str, report_dir: Path | None) -> list[QueryLoss]:
    """The queries the candidate lost most on: by the humans' labels where they labelled the query whole, else the judge's."""
    page = f"{report_dir}/report.html" if report_dir else "report.html"
    corrected = evaluation.corrected
    humans = corrected.human_metrics if corrected is not None else {}
    labelled = set(humans[baseline].per_query.index) if baseline in humans else set()

    def value(engine: str, query_id: str) -> float:
        source = humans[engine] if query_id in labelled else evaluation.metrics[engine]
        return float(per_query_values(source, metric, [query_id])[0])

    scored = [(q, value(baseline, q.query_id), value(candidate, q.query_id)) for q in evaluation.queries]
    lost = sorted((s for s in scored if s[2] < s[1]), key=lambda s: s[2] - s[1])[:LOSERS]
    return [QueryLoss(q.query_id, q.text, round(b, 4), round(c, 4), f"{page}#query-{q.query_id}") for q, b, c in lost]

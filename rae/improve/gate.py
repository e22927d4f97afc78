"""``rae gate``: a release decision a CI pipeline can act on. Is the candidate engine worse than the baseline by
more than a margin?

Non-inferiority, on the 95% interval of candidate minus baseline (the chosen metric, per query, over the gate's
queries): **pass** when its lower end is above minus the margin (whatever the candidate loses, it is less than the
margin), **fail** when its upper end is below minus the margin (it loses more, for sure), **inconclusive** when the
interval straddles minus the margin (more queries, or more human labels, would narrow it). The interval is the
prediction-powered one (the judge's labels on every query, corrected by the queries humans labelled whole) when
enough queries are human-labelled; else it is the judge's alone (a bootstrap over queries, blind to the judge's own
error), and the verdict says which. A judge that overrates the candidate can pass a regression alone; the correction
is what catches it.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from rae.evaluate.corrected import per_query_values
from rae.evaluate.evaluation import Evaluation
from rae.evaluate.ppi import MIN_HUMAN_QUERIES, three_estimates
from rae.stats import Estimate, mean_with_ci

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
EXIT_CODES = {PASS: 0, FAIL: 1, INCONCLUSIVE: 3}
USAGE_ERROR = 2
LOSERS = 5


def decide(interval: Estimate, margin: float) -> str:
    """Non-inferiority at ``margin`` from the interval of candidate minus baseline."""
    if interval.ci_low > -margin:
        return PASS
    if interval.ci_high < -margin:
        return FAIL
    return INCONCLUSIVE


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


@dataclass
class Verdict:
    baseline: str
    candidate: str
    metric: str
    margin: float
    decision: str
    interval: Estimate  # candidate minus baseline, the interval the decision used
    basis: str  # which interval: prediction-powered, or the judge's alone
    queries: int
    human_queries: int
    judge_alone: Estimate
    losers: list[QueryLoss] = field(default_factory=list)
    report: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def paragraph(self) -> str:
        i = self.interval
        what = f"{self.candidate} minus {self.baseline} on {self.metric}: {i.value:+.4f} (95% interval {i.ci_low:+.4f} to {i.ci_high:+.4f}, {self.basis})"
        reason = {
            PASS: f"the interval's lower end is above -{self.margin:g}, so the candidate loses less than the margin, if anything",
            FAIL: f"the interval's upper end is below -{self.margin:g}, so the candidate loses more than the margin",
            INCONCLUSIVE: f"the interval straddles -{self.margin:g}: label more queries (rae plan --margin {self.margin:g}) or evaluate more queries to decide",
        }[self.decision]
        alone = "" if self.basis.startswith("the judge") else f" The judge alone would say {self.judge_alone.value:+.4f} ({self.judge_alone.ci_low:+.4f} to {self.judge_alone.ci_high:+.4f})."
        return f"{self.decision.upper()}: {what}; {reason}.{alone}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision, "exit_code": self.exit_code, "baseline": self.baseline, "candidate": self.candidate,
            "metric": self.metric, "margin": self.margin, "difference": vars(self.interval), "basis": self.basis,
            "queries": self.queries, "human_labelled_queries": self.human_queries, "judge_alone": vars(self.judge_alone),
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


@dataclass(frozen=True)
class DifferenceInterval:
    """Candidate minus baseline: the interval a verdict rests on, which one it is, and the judge's alone beside it."""

    interval: Estimate
    basis: str
    judge_alone: Estimate
    human_queries: int


def difference_interval(judge: np.ndarray, human: np.ndarray, judge_on_human: np.ndarray, weights: np.ndarray | None = None) -> DifferenceInterval:
    """Per-query differences under the judge's labels on every query, and under the humans' and the judge's on the
    queries humans labelled whole: the prediction-powered interval when there are enough of those, else the judge's."""
    judge_alone = mean_with_ci(judge)
    n = len(human)
    if n < MIN_HUMAN_QUERIES:
        basis = f"the judge alone: {n} queries have whole human-labelled pools, {MIN_HUMAN_QUERIES} are needed to correct it"
        return DifferenceInterval(judge_alone, basis, judge_alone, n)
    ppi = three_estimates(judge, human, judge_on_human, weights, difference=True).ppi
    basis = f"prediction-powered: the judge on {len(judge)} queries, corrected by the {n} humans labelled whole"
    return DifferenceInterval(ppi, basis, judge_alone, n)


def gate_verdict(evaluation: Evaluation, baseline: str, candidate: str, metric: str, margin: float, report_dir: Path | None = None) -> Verdict:
    """The verdict on an evaluation of both engines."""
    queries = [q.query_id for q in evaluation.queries]
    difference = per_query_values(evaluation.metrics[candidate], metric, queries) - per_query_values(evaluation.metrics[baseline], metric, queries)
    corrected = evaluation.corrected
    labelled = corrected.labelled_queries if corrected is not None else []
    human = on_labelled = np.array([])
    if corrected is not None and labelled:
        human = per_query_values(corrected.human_metrics[candidate], metric, labelled) - per_query_values(corrected.human_metrics[baseline], metric, labelled)
        on_labelled = per_query_values(evaluation.metrics[candidate], metric, labelled) - per_query_values(evaluation.metrics[baseline], metric, labelled)
    found = difference_interval(difference, human, on_labelled, corrected.weights_of(labelled) if corrected is not None else None)
    return Verdict(baseline, candidate, metric, margin, decide(found.interval, margin), found.interval, found.basis, len(queries), found.human_queries,
                   found.judge_alone, _losers(evaluation, baseline, candidate, metric, report_dir), str(report_dir or ""))


def _losers(evaluation: Evaluation, baseline: str, candidate: str, metric: str, report_dir: Path | None) -> list[QueryLoss]:
    """The queries the candidate lost most on: by the humans' labels where they labelled the query whole, else the judge's."""
    page = f"{report_dir}/report.html" if report_dir else "report.html"
    humans = evaluation.corrected.human_metrics if evaluation.corrected is not None else {}
    labelled = set(evaluation.corrected.labelled_queries) if evaluation.corrected is not None else set()

    def value(engine: str, query_id: str) -> float:
        source = humans[engine] if query_id in labelled else evaluation.metrics[engine]
        return float(per_query_values(source, metric, [query_id])[0])

    scored = [(q, value(baseline, q.query_id), value(candidate, q.query_id)) for q in evaluation.queries]
    lost = sorted((s for s in scored if s[2] < s[1]), key=lambda s: s[2] - s[1])[:LOSERS]
    return [QueryLoss(q.query_id, q.text, round(b, 4), round(c, 4), f"{page}#query-{q.query_id}") for q, b, c in lost]

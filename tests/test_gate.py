"""``rae gate``: three verdicts with their exit codes where the truth is known; a regression the judge alone would
pass that a drawn sample of human labels catches; and labels that were not drawn, which never correct the judge but
stop a pass they contradict, as in the regression a release once let through (bm25-desc, a judge at chance)."""

import hashlib
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.evaluate.ppi import Sample, three_estimates
from rae.improve.gate import EXIT_CODES, FAIL, INCONCLUSIVE, PASS, DifferenceInterval, HumansCheck, decide, weigh
from rae.labels import Label
from rae.stats import Estimate, mean_with_ci
from tests.conftest import install_scripted
from tests.scripted import ScriptedEngine, default_answer, field_text


@pytest.mark.parametrize(
    ("low", "high", "decision", "code"),
    [(-0.005, 0.02, PASS, 0), (-0.05, -0.02, FAIL, 1), (-0.03, 0.01, INCONCLUSIVE, 3)],
)
def test_non_inferiority_decides_by_where_the_interval_lies_against_the_margin(low, high, decision, code):
    assert decide(Estimate((low + high) / 2, low, high), margin=0.01) == decision and EXIT_CODES[decision] == code


def test_a_judge_that_overrates_the_candidate_passes_a_regression_that_a_drawn_sample_catches():
    rng = np.random.default_rng(0)
    n_all, n_human = 300, 40
    truth = -0.05 + rng.normal(0, 0.03, n_all)  # the candidate really loses 0.05, five times the margin
    judge = rng.normal(0.0, 0.02, n_all)  # the judge sees no loss at all
    assert decide(mean_with_ci(judge), 0.01) == PASS
    sample = Sample.uniform(rng.choice(n_all, n_human, replace=False), n_all)
    corrected = three_estimates(judge, truth[sample.positions], sample, difference=True).ppi
    assert decide(corrected, 0.01) == FAIL and corrected.ci_low <= truth.mean() <= corrected.ci_high


def interval(low: float, high: float, provisional: bool = False) -> DifferenceInterval:
    found = Estimate((low + high) / 2, low, high)
    return DifferenceInterval(found, "the judge alone", found, 0, provisional=provisional)


def test_the_humans_own_labels_fail_or_hold_a_pass_they_contradict_and_a_provisional_correction_never_passes():
    passing = interval(-0.02, 0.03)
    assert weigh(passing, None, 0.05) == (PASS, [])
    below = HumansCheck(Estimate(-0.16, -0.2, -0.12), 118)
    decision, reasons = weigh(passing, below, 0.05)
    assert decision == FAIL and "humans' own labels" in reasons[0]
    straddling = HumansCheck(Estimate(-0.08, -0.15, -0.01), 12)
    assert weigh(passing, straddling, 0.05)[0] == INCONCLUSIVE
    agreeing = HumansCheck(Estimate(-0.01, -0.04, 0.02), 50)
    assert weigh(passing, agreeing, 0.05) == (PASS, [])
    assert weigh(interval(-0.02, 0.03, provisional=True), None, 0.05)[0] == INCONCLUSIVE
    assert weigh(interval(-0.2, -0.1, provisional=True), None, 0.05)[0] == FAIL


def trec_run(path, rankings: dict[str, list[str]]) -> None:
    path.write_text("".join(f"{q} Q0 {p} {r} {100 - r} run\n" for q, products in rankings.items() for r, p in enumerate(products, start=1)))


@pytest.fixture
def engines(project):
    """Two runs over the labelled set's dev queries, every listed product human-labelled: the baseline ranks the
    exact matches first, the candidate the irrelevant ones (a regression, under the human labels)."""
    labelled = esci_us()
    queries = [q.query_id for q in labelled.queries("dev")][:12]
    by_label: dict[str, dict[Label, list[str]]] = {q: {} for q in queries}
    for j in labelled.judgments:
        if j.query_id in by_label:
            by_label[j.query_id].setdefault(j.label, []).append(j.product_id)
    good = {q: (by_label[q].get(Label.HIGHLY_RELEVANT, []) + by_label[q].get(Label.IRRELEVANT, []))[:5] for q in queries}
    bad = {q: (by_label[q].get(Label.IRRELEVANT, []) + by_label[q].get(Label.HIGHLY_RELEVANT, []))[:5] for q in queries}
    trec_run(project / "baseline.run", good)
    trec_run(project / "candidate.run", bad)
    with (project / "rae.toml").open("a") as handle:
        handle.write('\n[engines.prod]\nkind = "trec"\npath = "baseline.run"\n\n[engines.next]\nkind = "trec"\npath = "candidate.run"\n\n[engines.same]\nkind = "trec"\npath = "baseline.run"\n')
    return project


def judge_saying(label: str):
    return lambda stage, request: {"reasoning": "scripted", "label": label} if stage == "judgment" else default_answer(stage, request)


def gate(*args: str):
    return CliRunner().invoke(app, ["gate", "--split", "dev", "--queries", "12", "--k", "5", "--json", *args])


def test_labels_that_were_not_drawn_fail_a_real_regression_the_judge_alone_would_pass(engines, monkeypatch):
    """The bundled labels cover both engines' lists whole, but they were not drawn: they do not correct the judge, and
    still fail the candidate, saying why."""
    install_scripted(monkeypatch, ScriptedEngine(judge_saying("highly_relevant")))  # a judge that likes everything
    result = gate("--baseline", "prod", "--candidate", "next", "--junit", "gate.xml", "--summary", "summary.md")
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.stdout)
    assert verdict["decision"] == "fail" and verdict["basis"].startswith("the judge alone")
    assert verdict["judge_alone"]["ci_low"] > -0.01  # alone, the judge would have passed it
    assert verdict["humans_check"]["ci_high"] < -0.01 and "humans' own labels" in verdict["reasons"][0]
    assert verdict["lost_most"] and all(q["difference"] < 0 for q in verdict["lost_most"])
    assert verdict["lost_most"][0]["link"].endswith(f"report.html#query-{verdict['lost_most'][0]['query_id']}")
    case = ET.parse(engines / "gate.xml").getroot().find("testsuite/testcase")
    assert case.find("failure") is not None
    assert (engines / "summary.md").read_text().startswith("### rae gate: FAIL")


def test_a_drawn_sample_corrects_the_judge_and_says_its_design(engines, monkeypatch):
    """The bundled labels cover every pool of these 12 queries whole before the draw: whatever the design drew (8 of
    them, uniformly), the humans' metric is known exactly, and a judge that likes everything cannot pass the loss."""
    install_scripted(monkeypatch, ScriptedEngine(judge_saying("highly_relevant")))
    first = json.loads(gate("--baseline", "prod", "--candidate", "next").stdout)
    drawn = CliRunner().invoke(app, ["review", "queue", "--for-evaluation", first["report"].rsplit("/", 1)[-1], "--queries", "8", "--design", "uniform"])
    assert drawn.exit_code == 0, drawn.output
    assert "queued 0 pairs" in drawn.stdout  # the bundled labels cover the drawn pools whole: nothing to label
    result = gate("--baseline", "prod", "--candidate", "next")
    verdict = json.loads(result.stdout)
    assert result.exit_code == 1 and verdict["design"] == "uniform" and verdict["human_labelled_queries"] == 12
    assert "covered the pools of all 12 queries whole before the draw: known exactly" in verdict["basis"]
    assert verdict["difference"]["ci_low"] == verdict["difference"]["ci_high"] < -0.01


def test_the_same_engine_passes_with_exit_0_and_a_usage_error_exits_2(engines, scripted_workspace):
    passed = gate("--baseline", "prod", "--candidate", "same")
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.stdout)["decision"] == "pass"
    assert gate("--baseline", "prod", "--candidate", "nowhere").exit_code == 2
    assert gate("--baseline", "prod", "--candidate", "prod").exit_code == 2


def at_chance(stage, request):
    """A judge at chance: a label from a hash of the pair (the fake server's, in the regression a release let through)."""
    if stage != "judgment":
        return default_answer(stage, request)
    digest = int(hashlib.sha256((field_text(request, "query") + field_text(request, "product")).encode()).hexdigest()[:8], 16)
    return {"reasoning": "a coin", "label": ("irrelevant", "acceptable_substitute", "highly_relevant")[digest % 3]}


@pytest.mark.slow
def test_a_candidate_that_searches_descriptions_only_never_passes(project, monkeypatch):
    """The issue's own case: bm25-desc loses about 0.16 nDCG@10 by the bundled labels, a judge at chance sees no loss,
    and no draw was made. At every margin from 0.02 to 0.1 and 40 or 120 queries the gate fails it or holds it."""
    install_scripted(monkeypatch, ScriptedEngine(at_chance))
    with (project / "rae.toml").open("a") as handle:
        handle.write('\n[engines.bm25-desc]\nkind = "bm25"\nfields = { description = 1.0 }\n')
    for queries, margin in ((40, "0.02"), (40, "0.1"), (120, "0.06"), (120, "0.1")):
        result = CliRunner().invoke(app, ["gate", "--baseline", "bm25-full", "--candidate", "bm25-desc", "--split", "all", "--queries", str(queries),
                                          "--k", "10", "--margin", margin, "--json"])
        verdict = json.loads(result.stdout)
        assert result.exit_code in (1, 3) and verdict["decision"] != "pass", verdict["verdict"]
        assert verdict["decision"] != "fail" or "label more queries" not in verdict["verdict"]  # no labels can make it pass
        assert verdict["judge_alone"]["value"] > -0.05  # the judge at chance sees no loss
        assert verdict["candidate_coverage"]["labelled_share"] < 0.7 and "rae review queue --for-evaluation" in verdict["label_command"]
    plan = CliRunner().invoke(app, ["plan", "--margin", "0.02", "--json"])  # the last gate's evaluation: no draw can pass it
    row = next(r for r in json.loads(plan.stdout)["rows"] if r["what"] == "bm25-desc - bm25-full")
    assert row["note"].startswith("the humans' own labels fail it already") and not row["queries"], row

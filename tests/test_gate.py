"""``rae gate``: three verdicts with their exit codes where the truth is known, and a regression that a judge alone
would pass but the prediction-powered interval catches."""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.improve.gate import EXIT_CODES, FAIL, INCONCLUSIVE, PASS, decide, difference_interval
from rae.labels import Label
from rae.stats import Estimate
from tests.scripted import ScriptedEngine, default_answer


@pytest.mark.parametrize(
    ("low", "high", "decision", "code"),
    [(-0.005, 0.02, PASS, 0), (-0.05, -0.02, FAIL, 1), (-0.03, 0.01, INCONCLUSIVE, 3)],
)
def test_non_inferiority_decides_by_where_the_interval_lies_against_the_margin(low, high, decision, code):
    assert decide(Estimate((low + high) / 2, low, high), margin=0.01) == decision and EXIT_CODES[decision] == code


def test_a_judge_that_overrates_the_candidate_passes_a_regression_that_ppi_catches():
    rng = np.random.default_rng(0)
    n_all, n_human = 300, 40
    truth = -0.05 + rng.normal(0, 0.03, n_all)  # the candidate really loses 0.05, five times the margin
    judge = rng.normal(0.0, 0.02, n_all)  # the judge sees no loss at all
    alone = difference_interval(judge, np.array([]), np.array([]))
    assert alone.basis.startswith("the judge alone") and decide(alone.interval, 0.01) == PASS
    corrected = difference_interval(judge, truth[:n_human], judge[:n_human])
    assert corrected.basis.startswith("prediction-powered") and decide(corrected.interval, 0.01) == FAIL
    assert corrected.interval.ci_low <= -0.05 <= corrected.interval.ci_high


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


def test_the_gate_fails_a_real_regression_with_exit_1_though_the_judge_alone_would_pass_it(engines, monkeypatch):
    from tests.conftest import install_scripted

    install_scripted(monkeypatch, ScriptedEngine(judge_saying("highly_relevant")))  # a judge that likes everything
    result = gate("--baseline", "prod", "--candidate", "next", "--junit", "gate.xml", "--summary", "summary.md")
    assert result.exit_code == 1, result.output
    verdict = json.loads(result.stdout)
    assert verdict["decision"] == "fail" and verdict["basis"].startswith("prediction-powered")
    assert verdict["judge_alone"]["ci_low"] > -0.01  # alone, the judge would have passed it
    assert verdict["lost_most"] and all(q["difference"] < 0 for q in verdict["lost_most"])
    assert verdict["lost_most"][0]["link"].endswith(f"report.html#query-{verdict['lost_most'][0]['query_id']}")
    case = ET.parse(engines / "gate.xml").getroot().find("testsuite/testcase")
    assert case.find("failure") is not None
    assert (engines / "summary.md").read_text().startswith("### rae gate: FAIL")


def test_the_same_engine_passes_with_exit_0_and_a_usage_error_exits_2(engines, scripted_workspace):
    passed = gate("--baseline", "prod", "--candidate", "same")
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.stdout)["decision"] == "pass"
    assert gate("--baseline", "prod", "--candidate", "nowhere").exit_code == 2
    assert gate("--baseline", "prod", "--candidate", "prod").exit_code == 2

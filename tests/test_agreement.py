import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rae.annotate.run import AnnotationRun
from rae.cli import app
from rae.config import Settings
from rae.datasets.bundled import esci_us
from rae.datasets.records import Rating
from rae.labels import Label
from rae.studies.agreement import Compared, NothingJudged, agreement_metrics, agreement_report
from rae.workspace import Workspace

H, S, I = Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT  # noqa: E741 - the ESCI letters


def compared(pairs: list[tuple[str, Label, Label | None]]) -> list[Compared]:
    return [
        Compared(Rating(q, f"query {q}", f"p{i}", human, original_label="E"), llm, "ok" if llm else "failed")
        for i, (q, human, llm) in enumerate(pairs)
    ]


def test_metrics_equal_the_values_computed_by_hand():
    """Eight pairs; confusion (rows human 0/1/2, columns LLM) [[2,0,1],[0,2,0],[0,1,2]].

    accuracy 6/8. Cohen's kappa: p_o = 6/8, p_e = (3*2 + 2*3 + 3*3)/64 = 21/64, kappa = (48/64 - 21/64)/(43/64) = 27/43.
    Quadratic weights (i-j)^2: observed disagreement 1*1 (0 vs 2) + 1*1/4 (2 vs 1) = 5/4, expected 22/8, so 1 - 10/22 = 6/11.
    Krippendorff's ordinal alpha: value counts 5, 5, 6 of 16; squared ordinal distances 25 (0-1), 30.25 (1-2),
    110.25 (0-2); observed 2*(110.25 + 30.25) = 281, expected 2*(25*25 + 5*6*110.25 + 5*6*30.25) = 9680;
    alpha = 1 - 15*281/9680.
    """
    human = np.array([2, 2, 1, 0, 0, 1, 2, 0])
    llm = np.array([2, 1, 1, 0, 2, 1, 2, 0])
    accuracy, kappa, weighted, alpha = agreement_metrics(human, llm)
    assert accuracy == pytest.approx(6 / 8)
    assert kappa == pytest.approx(27 / 43)
    assert weighted == pytest.approx(6 / 11)
    assert alpha == pytest.approx(1 - 15 * 281 / 9680)


def test_an_adjacent_slip_costs_less_than_a_far_one_in_the_weighted_metrics():
    adjacent_slip = agreement_metrics(np.array([2, 1, 0, 2]), np.array([1, 1, 0, 2]))
    far_slip = agreement_metrics(np.array([2, 1, 0, 2]), np.array([0, 1, 0, 2]))
    assert adjacent_slip[0] == far_slip[0]  # accuracy cannot tell them apart
    assert adjacent_slip[2] > far_slip[2] and adjacent_slip[3] > far_slip[3]


def test_report_counts_failures_apart_and_lists_hard_disagreements():
    rows = [("a", H, H), ("a", H, I), ("a", S, S), ("b", I, I), ("b", I, H), ("b", H, None), ("c", H, H), ("c", S, H)]
    report = agreement_report(compared(rows), n_resamples=200)
    assert (report.n_pairs, report.n_failed, report.n_queries) == (7, 1, 3)
    assert report.accuracy.value == pytest.approx(4 / 7, abs=1e-4)
    assert report.accuracy.ci_low <= report.accuracy.value <= report.accuracy.ci_high
    assert report.baseline_label == "highly_relevant" and report.baseline_accuracy == pytest.approx(3 / 7, abs=1e-4)
    assert report.confusion["highly_relevant"] == {"irrelevant": 1, "acceptable_substitute": 0, "highly_relevant": 2}
    assert {(d["human"], d["llm"]) for d in report.hard_disagreements} == {("highly_relevant", "irrelevant"), ("irrelevant", "highly_relevant")}
    assert report.per_label["acceptable_substitute"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    table = report.markdown()
    assert "| kappa |" in table and "majority baseline" in table and "Hard disagreements (irrelevant vs highly_relevant): 2" in table


def test_perfect_agreement_is_one_with_a_tight_interval():
    rows = [(q, label, label) for q in "abcd" for label in (H, S, I)]
    report = agreement_report(compared(rows), n_resamples=200)
    assert report.kappa.value == 1.0 and report.kappa.ci_low == 1.0 and report.alpha.value == pytest.approx(1.0)


def test_no_judged_pair_is_a_clear_error():
    with pytest.raises(NothingJudged, match="run `rae annotate` first"):
        agreement_report(compared([("a", H, None)]))


def test_agreement_json_has_the_promised_shape(tmp_path, scripted_workspace):
    """Fill a store with the scripted model under the embedded model's identity, then read it through the CLI."""
    url = f"sqlite:///{tmp_path / 'rae.db'}"
    data = esci_us()
    judging = Workspace(Settings(store=url, program="uncompiled")).judging()  # what the CLI's workspace will read back
    AnnotationRun(judging, data.catalog, workers=4, progress=False).run(data.pairs("dev", queries=3, per_query=6))

    args = ["agreement", "--split", "dev", "--queries", "4", "--per-query", "6", "--store", url, "--json", "--program", "uncompiled"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for name in ("accuracy", "kappa", "weighted_kappa", "alpha"):
        assert set(report[name]) == {"value", "ci_low", "ci_high", "note"}
    assert report["n_pairs"] == 18 and report["n_failed"] == 0 and report["n_missing"] == 6
    assert set(report["confusion"]) == {"irrelevant", "acceptable_substitute", "highly_relevant"}
    assert 0 < report["baseline_accuracy"] <= 1 and report["model"] == "local/smollm2"
    assert sum(scripted_workspace.calls.values()) == 3 + 3 + 18  # the CLI itself made no call


def test_json_output_has_null_where_an_interval_is_undefined(tmp_path, scripted_workspace):
    """One query: the bootstrap interval is undefined, and JSON has no NaN."""
    url = f"sqlite:///{tmp_path / 'rae.db'}"
    data = esci_us()
    judging = Workspace(Settings(store=url, program="uncompiled")).judging()
    AnnotationRun(judging, data.catalog, progress=False).run(data.pairs("dev", queries=1, per_query=3))
    result = CliRunner().invoke(app, ["agreement", "--split", "dev", "--queries", "1", "--per-query", "3", "--store", url, "--json", "--program", "uncompiled"])
    assert "NaN" not in result.stdout
    kappa = json.loads(result.stdout)["kappa"]
    assert kappa["ci_low"] is None and kappa["note"] == "too few queries for an interval"
    text = CliRunner().invoke(app, ["agreement", "--split", "dev", "--queries", "1", "--per-query", "3", "--store", url, "--program", "uncompiled"])
    assert "| kappa |" in text.stdout and "too few queries for an interval" in text.stdout and "nan" not in text.stdout

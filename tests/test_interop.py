"""Judgment lists and query sets in the formats of Quepid, OpenSearch SRW and TREC: read as those tools write them,
written as they read them, and every format round-trips through rae's store."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import load_settings
from rae.datasets.judgment_writing import WRITTEN
from rae.datasets.query_sets import read_query_set
from rae.datasets.searchlog import query_id_for
from rae.labels import Label
from rae.store.human_labels import latest_ratings
from rae.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures"
E, S, I = Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT  # noqa: E741 - the ESCI letters


def imported(*args: str) -> dict[tuple[str, str, str], Label]:
    result = CliRunner().invoke(app, ["judgments", "import", *args])
    assert result.exit_code == 0, result.output
    return {(r.query_id, r.product_id, r.rater): r.label for r in latest_ratings(Workspace(load_settings()).store)}


def test_a_quepid_case_csv_imports_as_quepid_writes_it(project):
    labels = imported(str(FIXTURES / "quepid_case.csv"), "--format", "quepid-csv", "--rater", "quepid-team")
    assert labels == {
        ("100189", "B01M3YCXD2", "quepid-team"): E,  # 3 on Quepid's 0-3 scale
        ("100189", "B06XP1NJYG", "quepid-team"): S,  # 1
        ("100618", "B07R2MPQJG", "quepid-team"): E,  # 2
        ("100618", "B07CSCYVYB", "quepid-team"): I,  # 0
        (query_id_for("-40 degree freezer"), "B07R2MPQJG", "quepid-team"): I,  # its leading space (formula guard) undone
    }  # and the query nobody rated adds nothing


def test_a_quepid_book_imports_each_judge_as_a_rater_and_skips_what_was_not_rated(project):
    labels = imported(str(FIXTURES / "quepid_book.json"), "--format", "quepid-book")
    assert labels == {("101475", "B0832DZJ8S", "ana@example.com"): E, ("101475", "B0832DZJ8S", "ben@example.com"): E, ("101475", "B081CPBZ27", "ana@example.com"): S}
    notes = {r.note for r in latest_ratings(Workspace(load_settings()).store)}
    assert "exactly that" in notes  # the judge's explanation is kept


def test_an_srw_judgment_import_body_imports_with_numeric_and_string_ratings(project):
    labels = imported(str(FIXTURES / "srw_import_judgment.json"), "--format", "srw", "--rater", "srw")
    assert labels == {("100189", "B01M3YCXD2", "srw"): E, ("100189", "B06XP1NJYG", "srw"): S, ("100618", "B07R2MPQJG", "srw"): E, ("100618", "B07CSCYVYB", "srw"): I}


def test_an_srw_query_set_is_read_as_queries():
    queries = read_query_set(FIXTURES / "srw_query_set.ndjson")
    assert [q.text for q in queries] == ["table top bandsaw for metal", "tank top plus size women"]
    assert queries[0].query_id == query_id_for("table top bandsaw for metal")


@pytest.mark.parametrize("fmt", WRITTEN)
def test_every_format_round_trips_the_human_and_the_judges_labels(project, scripted_workspace, fmt):
    slice_ = ["--split", "dev", "--queries", "2", "--per-query", "4"]
    assert CliRunner().invoke(app, ["annotate", *slice_]).exit_code == 0
    workspace = Workspace(load_settings())
    chosen = workspace.labelled.select("dev", 2, 4)
    expected = {
        "human": {(j.query_id, j.product_id): j.label for j in chosen},
        "llm": {(j.query_id, j.product_id): Label(o.value.label) for j, o in zip(chosen, workspace.stored_judgments([j.pair for j in chosen]).values(), strict=True)},
    }
    search = ["--engine", "prod-os"] if fmt == "quepid-case" else []  # a Quepid case carries the search it runs
    if search:
        (project / "rae.toml").write_text((project / "rae.toml").read_text() + '[engines.prod-os]\nkind = "opensearch"\nurl = "https://os.example/p/_search"\n')
    for which in ("human", "llm"):  # one rater's list a file: every format can carry that
        out = project / f"{which}.{fmt}"
        exported = CliRunner().invoke(app, ["judgments", "export", str(out), "--format", fmt, "--labels", which, *slice_, *search])
        assert exported.exit_code == 0, exported.output
        assert "exported 8 labels of 8 pairs" in exported.stdout
        fresh = f"sqlite:///{project / (which + fmt + '.db')}"
        back = CliRunner().invoke(app, ["judgments", "import", str(out), "--format", fmt, "--rater", which, "--store", fresh])
        assert back.exit_code == 0, back.output
        stored = latest_ratings(Workspace(load_settings().with_overrides(store=fresh)).store)
        assert {(r.query_id, r.product_id): r.label for r in stored} == expected[which]
    if fmt in ("quepid-book", "quepid-case", "quepid-judgements", "csv", "jsonl"):  # formats that name each label's rater carry both in one file
        judge = f"{workspace.settings.model.name}:{workspace.describe()['program']}"
        emails = ["--rater-email", "esci-us=labels@shop.example", "--rater-email", f"{judge}=judge@shop.example"] if fmt.startswith("quepid-") and fmt != "quepid-judgements" else []
        out = project / f"both.{fmt}"
        assert CliRunner().invoke(app, ["judgments", "export", str(out), "--format", fmt, "--labels", "both", *slice_, *emails, *search]).exit_code == 0
        fresh = f"sqlite:///{project / ('both' + fmt + '.db')}"
        assert CliRunner().invoke(app, ["judgments", "import", str(out), "--format", fmt, "--store", fresh]).exit_code == 0
        by_rater: dict[str, dict] = {}
        for r in latest_ratings(Workspace(load_settings().with_overrides(store=fresh)).store):
            by_rater.setdefault(r.rater, {})[(r.query_id, r.product_id)] = r.label
        if fmt in ("quepid-book", "quepid-case"):  # Quepid names judges by email
            assert by_rater == {"labels@shop.example": expected["human"], "judge@shop.example": expected["llm"]}
        else:  # the labelled set's own labels are recognised, not stored twice
            assert by_rater == {judge: expected["llm"]}


def test_quepid_csv_is_written_with_its_quirks(project, scripted_workspace):
    from rae.datasets.judgment_writing import write_judgments
    from rae.datasets.rating_scales import SCALES
    from rae.datasets.records import Rating

    out = project / "case.csv"
    write_judgments(out, "quepid-csv", [Rating("q1", "-40 degree freezer", "B1", E, "r"), Rating("q2", "lamp", "B2", S, "r")], SCALES["0-3"], "x", {})
    assert out.read_text() == 'query,docid,rating\n -40 degree freezer,B1,3\nlamp,B2,1'  # formula guard, and no trailing newline


def test_a_rating_off_the_scale_and_an_unknown_trec_query_are_one_line_errors(project):
    bad = project / "bad.json"
    bad.write_text(json.dumps({"name": "x", "type": "IMPORT_JUDGMENT", "judgmentRatings": [{"query": "q", "ratings": [{"docId": "d", "rating": "100.0"}]}]}))
    result = CliRunner().invoke(app, ["judgments", "import", str(bad), "--format", "srw"])
    assert result.exit_code == 1 and "bad.json:1: unit cannot read the rating 100; the file's ratings (100) fit --scale srw-esci or percent" in str(result.exception)
    qrels = project / "qrels.txt"
    qrels.write_text("100189 0 B01M3YCXD2 2\nnot-a-query 0 B01M3YCXD2 1\n")
    result = CliRunner().invoke(app, ["judgments", "import", str(qrels), "--format", "trec"])
    assert result.exit_code == 1 and "qrels.txt:2: query id 'not-a-query' is not one rae knows" in str(result.exception)

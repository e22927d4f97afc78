"""Judgment lists and query sets as the peers themselves write them (their own files, under tests/fixtures/peers,
see its NOTICE), and rae's exports checked the way the peers' importers check them."""

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import load_settings
from rae.datasets.bundled import esci_us
from rae.datasets.query_sets import read_query_set, write_srw_query_set
from rae.datasets.readers import DataFileError
from rae.datasets.searchlog import query_id_for
from rae.interop.raters import RaterError
from rae.labels import Label
from rae.store.human_labels import latest_ratings
from rae.workspace import Workspace

PEERS = Path(__file__).parent / "fixtures" / "peers"
HAYSTACK = PEERS / "haystack_rating_party_book.json.zip"
SRW_ESCI = PEERS / "srw_esci_us_judgments.json"
E, S, I = Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT  # noqa: E741 - the ESCI letters


def rae(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    result = rae(*args)
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    return result.stdout


def refused(*args: str) -> str:
    """The one-line message of a command rae refuses (the CLI prints it as ``rae: error: ...``, without a traceback)."""
    result = rae(*args)
    assert result.exit_code != 0 and isinstance(result.exception, (DataFileError, RaterError)), f"{result.output}{result.exception!r}"
    message = str(result.exception)
    assert "\n" not in message
    return message


def stored() -> list:
    return latest_ratings(Workspace(load_settings()).store)


# 2. SRW's own ESCI sample: 100 / 10 / 1 / 0 for E / S / C / I, a scale rae knows by name


def test_srws_esci_sample_imports_unchanged_under_its_named_scale_and_agrees_with_the_bundled_labels(project):
    out = ok("judgments", "import", str(SRW_ESCI), "--format", "srw", "--scale", "srw-esci", "--rater", "srw-esci")
    assert "imported 6678 labels of 6678 pairs (srw-esci)" in out and "scale srw-esci: asked for" in out
    bundled = {(j.query_id, j.product_id): j.label for j in esci_us().judgments}
    mine = {(r.query_id, r.product_id): r.label for r in stored()}
    shared = bundled.keys() & mine.keys()
    assert len(shared) == 5311 and all(mine[p] == bundled[p] for p in shared)
    assert Counter(mine[p] for p in shared)[S] == sum(j.label == S for j in esci_us().judgments)  # every substitute kept


def test_srws_esci_sample_is_never_read_on_a_scale_that_moves_its_classes(project):
    default = refused("judgments", "import", str(SRW_ESCI), "--format", "srw")
    assert "unit cannot read the ratings 10, 100" in default and "fit --scale srw-esci" in default
    percent = refused("judgments", "import", str(SRW_ESCI), "--format", "srw", "--scale", "percent")
    assert "--scale percent would read 0 as irrelevant, 1 as irrelevant, 10 as irrelevant, 100 as highly_relevant" in percent
    assert "fit --scale srw-esci" in percent and stored() == []


# 12, 4, 6: Quepid's own book, zipped as Quepid hands it out; what came in goes out; raters never merge


def test_quepids_haystack_book_imports_zipped_with_each_judge_and_its_scorers_scale(project):
    out = ok("judgments", "import", str(HAYSTACK), "--format", "quepid-book")
    assert "imported 1920 labels of" in out and "scale 0-3: the file's scorer nDCG@10" in out
    book = json.loads(zipfile.ZipFile(HAYSTACK).read("haystack_rating_party_book.json"))
    rated = [(p["query_text"], p["doc_id"], j) for p in book["query_doc_pairs"] for j in p["judgements"] if j["rating"] is not None]
    labels = {(r.query_id, r.product_id, r.rater): r.label for r in stored()}
    assert len(labels) == len(rated) == 1920
    expected = {0.0: I, 1.0: S, 2.0: E, 3.0: E}
    assert all(labels[(query_id_for(q), d, j["user_email"])] == expected[j["rating"]] for q, d, j in rated)


def test_what_came_in_from_quepid_goes_back_out_as_a_book_quepid_accepts(project):
    ok("judgments", "import", str(HAYSTACK), "--format", "quepid-book")
    out = ok("judgments", "export", "back.json", "--format", "quepid-book", "--labels", "human", "--rated")
    assert "exported 1920 labels of" in out
    book = json.loads((project / "back.json").read_text())
    assert_quepid_imports(book, users={r.rater for r in stored()})


def test_a_book_rae_wrote_names_its_raters_by_the_emails_given_and_says_when_one_is_missing(project, scripted_workspace):
    ok("annotate", "--split", "dev", "--queries", "2", "--per-query", "3")
    judge = next(r for r in rae_raters("both") if r != "esci-us")
    both = ["judgments", "export", "book.json", "--format", "quepid-book", "--labels", "both", "--split", "dev", "--queries", "2", "--per-query", "3"]
    assert "2 raters have none (" in refused(*both)
    assert "is not an email Quepid accepts" in refused(*both, "--rater-email", "esci-us=esci-us")
    ok(*both, "--rater-email", "esci-us=labels@shop.example", "--rater-email", f"{judge}=judge@shop.example")
    assert_quepid_imports(json.loads((project / "book.json").read_text()), users={"labels@shop.example", "judge@shop.example"})
    one = ok("judgments", "export", "one.json", "--format", "quepid-book", "--labels", "human", "--split", "dev", "--queries", "2", "--per-query", "3")
    assert "no --rater-email for esci-us: its judgements are written without user_email (Quepid imports them as anonymous)" in one
    assert_quepid_imports(json.loads((project / "one.json").read_text()), users=set())


def rae_raters(which: str) -> set[str]:
    ok("judgments", "export", "probe.csv", "--labels", which, "--split", "dev", "--queries", "2", "--per-query", "3")
    return {row["rater"] for row in csv.DictReader((Path("probe.csv")).open())}


def assert_quepid_imports(book: dict, users: set[str]) -> None:
    """What Quepid checks when it imports a book: ``BookImporter#validate`` (every ``user_email`` is an existing
    user, whose ``User`` model validates the email with Ruby's ``URI::MailTo::EMAIL_REGEXP``), ``Judgement``'s
    validations (a rating unless unrateable or judged later; one judgement a user a pair), and a ``scale`` of numbers
    that holds every rating (``Book#scale`` is what the judging page offers)."""
    email = re.compile(r"\A[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\Z")
    assert isinstance(book["scale"], list) and all(isinstance(v, int | float) for v in book["scale"])
    for pair in book["query_doc_pairs"]:
        assert pair["query_text"] and pair["doc_id"]
        judges = [j.get("user_email") for j in pair["judgements"] if j.get("user_email")]
        assert len(judges) == len(set(judges))
        for judgement in pair["judgements"]:
            assert judgement["rating"] is not None or judgement["unrateable"] or judgement["judge_later"]
            assert judgement["rating"] in book["scale"]
            if judgement.get("user_email"):
                assert judgement["user_email"] in users and email.match(judgement["user_email"])


def test_reimporting_raes_own_files_never_merges_with_the_bundled_set(project):
    ok("judgments", "export", "mine.csv", "--labels", "human", "--split", "dev", "--queries", "1", "--per-query", "3")
    assert "3 labels are the labelled set's own (esci-us), already in rae: not stored again" in ok("judgments", "import", "mine.csv")
    assert stored() == []
    rows = (project / "mine.csv").read_text().splitlines()
    flipped = rows[1].replace(rows[1].split(",")[3], "irrelevant" if "irrelevant" not in rows[1] else "highly_relevant")
    (project / "changed.csv").write_text("\n".join([rows[0], flipped]) + "\n")
    assert "1 labels under the labelled set's name 'esci-us' are not the set's" in refused("judgments", "import", "changed.csv")
    assert "(second-look)" in ok("judgments", "import", "changed.csv", "--rater", "second-look")
    assert {r.rater for r in stored()} == {"second-look"}


# 3: Quepid's custom scales


def book_with(scale: list, ratings: list) -> dict:
    pairs = [{"query_text": "desk lamp", "doc_id": f"D{i}", "judgements": [{"rating": r, "unrateable": False, "judge_later": False, "user_email": "a@b.example"}]}
             for i, r in enumerate(ratings)]
    return {"name": "custom", "scale": scale, "scale_with_labels": {str(v): str(v) for v in scale}, "query_doc_pairs": pairs}


def test_a_custom_quepid_scale_is_refused_with_the_mapping_it_would_get_and_taken_when_named(project):
    (project / "five.json").write_text(json.dumps(book_with([1, 2, 3, 4, 5], [1.0, 3.0, 5.0])))
    message = refused("judgments", "import", "five.json", "--format", "quepid-book")
    assert "--scale 1-5 would read it as 1 as irrelevant, 2 as irrelevant, 3 as acceptable_substitute, 4 as highly_relevant, 5 as highly_relevant" in message
    assert "scale 1-5: asked for" in ok("judgments", "import", "five.json", "--format", "quepid-book", "--scale", "1-5")
    assert sorted(r.label for r in stored()) == sorted([I, S, E])
    (project / "binary.json").write_text(json.dumps(book_with([0, 1], [0.0, 1.0])))
    assert "scale 0-1: asked for" in ok("judgments", "import", "binary.json", "--format", "quepid-book", "--scale", "P@10", "--rater", "p")


# 5: several raters, one rating a pair


def test_several_raters_are_refused_by_one_rating_formats_with_the_way_out(project):
    ok("judgments", "import", str(HAYSTACK), "--format", "quepid-book")
    for fmt in ("trec", "quepid-csv", "srw", "srw-csv"):
        assert "holds one rating a pair: export one rater's (--rater NAME), or a consensus (--consensus quepid" in refused(
            "judgments", "export", f"out.{fmt}", "--format", fmt, "--labels", "human", "--rated")
    ok("judgments", "export", "one.csv", "--format", "quepid-csv", "--labels", "human", "--rated", "--rater", "epugh@opensourceconnections.com")
    book = json.loads(zipfile.ZipFile(HAYSTACK).read("haystack_rating_party_book.json"))
    rated = [j for p in book["query_doc_pairs"] for j in p["judgements"] if j["user_email"] == "epugh@opensourceconnections.com" and j["rating"] is not None]
    assert len((project / "one.csv").read_text().splitlines()) == 1 + len(rated)
    out = ok("judgments", "export", "consensus.csv", "--format", "srw-csv", "--labels", "human", "--rated", "--consensus", "quepid")
    assert "(consensus:quepid)" in out
    rows = list(csv.reader((project / "consensus.csv").open()))[1:]
    assert len(rows) == len({(r[0], r[1]) for r in rows})  # what SRW's CSV importer would skip as a duplicate: none


@pytest.mark.parametrize(("gains", "expected"), [([2], 2), ([2, 0], 1), ([2, 1], 2), ([1, 0], 1), ([2, 2, 0], 0), ([2, 2, 2, 0], 2), ([0, 1, 2, 2], 1)])
def test_quepids_consensus_rule(gains, expected):
    from rae.datasets.records import Rating
    from rae.interop.raters import quepid_consensus

    labels = [Rating("q", "q", "d", Label(list(Label)[g]), f"r{i}") for i, g in enumerate(gains)]
    assert quepid_consensus(labels)[0].label.gain == expected


# 7: an import that stores nothing is an error


def test_imports_that_would_store_nothing_are_errors(project):
    (project / "graded.csv").write_text("query,docid,grade\ndesk lamp,B1,3\n")
    assert "expected the header query,docid,rating, found query,docid,grade" in refused("judgments", "import", "graded.csv", "--format", "quepid-csv")
    (project / "empty.txt").write_text("")
    assert "no ratings in it as trec (--allow-empty if an empty list is expected)" in refused("judgments", "import", "empty.txt", "--format", "trec")
    assert "imported 0 labels" in ok("judgments", "import", "empty.txt", "--format", "trec", "--allow-empty")


def quepid_judgements_csv() -> str:
    """Quepid's book judgements CSV as ``JudgementsController#index`` writes it: ``CSV.generate_line`` rows,
    ``query,docid`` and a column a judge by full name (``make_csv_safe``'d), a Ruby float or '' a cell."""
    rows = [["query", "docid", "Eric Pugh", "Anonymous"], ["desk lamp", "B1", "3.0", ""], ["-40 freezer", "B2", "0.0", "1.0"]]
    rows[2][0] = " -40 freezer"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def test_quepids_book_judgements_csv_imports_a_rater_a_column(project):
    (project / "book_1_judgements.csv").write_text(quepid_judgements_csv())
    hint = refused("judgments", "import", "book_1_judgements.csv", "--format", "quepid-csv")
    assert "--format quepid-judgements" in hint
    assert "imported 3 labels of 2 pairs (Anonymous, Eric Pugh)" in ok("judgments", "import", "book_1_judgements.csv", "--format", "quepid-judgements")
    labels = {(r.query, r.product_id, r.rater): r.label for r in stored()}
    assert labels == {("desk lamp", "B1", "Eric Pugh"): E, ("-40 freezer", "B2", "Eric Pugh"): I, ("-40 freezer", "B2", "Anonymous"): S}


# 8: malformed JSON is one line at the right line, never a traceback


@pytest.mark.parametrize(
    ("fmt", "body", "expected"),
    [
        ("srw", '{"judgmentRatings": [\n  {"query": "a", "ratings": {"docId": "d", "rating": "1"}}\n]}', ":2: judgmentRatings[0].ratings: expected a list of {docId, rating}, found an object"),
        ("srw", '{"judgmentRatings": [\n  "lamp"\n]}', ":2: judgmentRatings[0]: expected an object with query and ratings, found a string"),
        ("quepid-book", '{"scale": [0, 1],\n "query_doc_pairs": {"a": 1}}', ":2: query_doc_pairs: expected a list of query-doc pairs, found an object"),
        ("quepid-book", '{"scale": [0, 1], "query_doc_pairs": [\n {"query_text": "a", "doc_id": "d",\n  "judgements": {"rating": 1}}]}', ":3: query_doc_pairs[0].judgements: expected a list of judgements, found an object"),
        ("quepid-book", '{"scale": ["a", "b"], "query_doc_pairs": [{"query_text": "a", "doc_id": "d", "judgements": [{"rating": 1}]}]}', "the book's scale ['a', 'b'] is not a list of numbers"),
        ("srw", '{"judgmentRatings": [\n\n  {"query": "a", "ratings": [}\n]}', ":3: broken JSON"),
    ],
)
def test_malformed_json_is_one_line_at_its_line(project, fmt, body, expected):
    (project / "bad.json").write_text(body)
    result = subprocess.run([sys.executable, "-m", "rae", "judgments", "import", "bad.json", "--format", fmt], capture_output=True, text=True, cwd=project, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and expected in lines[0], result.stderr


# 9: SRW's CSVs: the header is optional, and its own tests rate 0-2


def test_srws_csv_without_a_header_and_its_0_to_2_test_file(project):
    (project / "headless.csv").write_text("laptop charger,doc1,1.0\nlaptop charger,doc2,0.0\n")
    assert "imported 2 labels" in ok("judgments", "import", "headless.csv", "--format", "srw-csv", "--rater", "headless")
    jest = "\n".join(["query,docid,rating", "laptop charger,doc1,1", "laptop charger,doc2,0", "iphone case,doc9,2"])  # judgment_file_processor.test.ts
    (project / "judgments.csv").write_text(jest)
    assert "fit --scale 0-2" in refused("judgments", "import", "judgments.csv", "--format", "srw-csv")
    ok("judgments", "import", "judgments.csv", "--format", "srw-csv", "--scale", "0-2", "--rater", "jest")
    assert {(r.query, r.product_id): r.label for r in stored() if r.rater == "jest"} == {
        ("laptop charger", "doc1"): S, ("laptop charger", "doc2"): I, ("iphone case", "doc9"): E}
    assert "imported 3 labels" in ok("judgments", "import", str(PEERS / "srw_judgments_example.csv"), "--format", "srw-csv", "--rater", "sample")


def test_an_srw_csv_rae_writes_passes_srws_own_parser(project):
    """``processJudgmentFile`` (dashboards-search-relevance, public/components/judgment/utils): lines split on newlines,
    a header only if it is exactly query,docid,rating, three fields a line after its quote handling, a numeric
    rating, no repeated (query, docId)."""
    ok("judgments", "export", "out.csv", "--format", "srw-csv", "--labels", "human", "--split", "dev", "--queries", "3")
    lines = [line.strip() for line in (project / "out.csv").read_text().split("\n") if line.strip()]
    assert lines[0] == "query,docid,rating"
    seen = set()
    for line in lines[1:]:
        query, docid, rating = srw_parse_csv_line(line)
        float(rating)
        assert query and docid and (query, docid) not in seen
        seen.add((query, docid))


def srw_parse_csv_line(line: str) -> list[str]:
    """SRW's ``parseCsvLine``, ported: quotes toggle, a doubled quote inside quotes is a quote, commas split."""
    cells, current, quoted, i = [], "", False, 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            if quoted and line[i + 1 : i + 2] == '"':
                current, i = current + '"', i + 2
                continue
            quoted = not quoted
        elif ch == "," and not quoted:
            cells.append(current)
            current = ""
        else:
            current += ch
        i += 1
    cells.append(current)
    assert len(cells) == 3, line
    return [c.strip() for c in cells]


# 10: query sets keep their text and their reference answers


def test_an_srw_query_set_keeps_its_case_and_reference_answers(tmp_path):
    source = PEERS / "srw_query_set_example_with_references.ndjson"
    queries = read_query_set(source)
    assert queries[1].text == "Who wrote 'Romeo and Juliet'?" and queries[1].reference_answer == "William Shakespeare"
    assert queries[1].query_id == query_id_for("who wrote 'romeo and juliet'?")  # the id is the same as the log's
    write_srw_query_set(tmp_path / "back.ndjson", queries)
    assert [json.loads(line) for line in (tmp_path / "back.ndjson").read_text().splitlines()] == [json.loads(line) for line in source.read_text().splitlines()]


def test_an_srw_import_body_rae_writes_passes_srws_importer(project):
    """``ImportJudgmentsProcessor.generateJudgmentRating`` (search-relevance, src/main/java/.../judgments): each
    entry's ``ratings`` a list, each ``docId`` a non-empty string, each ``rating`` a string (it casts with
    ``(String)``) that ``Float.parseFloat`` reads; a docId repeated within a query would be overwritten silently."""
    ok("judgments", "export", "out.json", "--format", "srw", "--labels", "human", "--split", "dev", "--queries", "3")
    body = json.loads((project / "out.json").read_text())
    assert body["type"] == "IMPORT_JUDGMENT" and body["judgmentRatings"]
    for entry in body["judgmentRatings"]:
        assert isinstance(entry["query"], str) and isinstance(entry["ratings"], list)
        ids = [r["docId"] for r in entry["ratings"]]
        assert len(ids) == len(set(ids))
        for rating in entry["ratings"]:
            assert isinstance(rating["docId"], str) and rating["docId"] and isinstance(rating["rating"], str)
            float(rating["rating"])

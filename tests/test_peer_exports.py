"""The peers' other files, as they publish them (tests/fixtures/peers, see its NOTICE): Quepid's case and snapshot
exports (zipped, with macOS's resource entry beside the data), its RRE export and Rated Ranking Evaluator's own
ratings, SRW's UBI sample with clicks; Quepid's detailed CSV built as its ``caseCSVSvc.js`` writes it. Malformed
variants are one line naming the file and line, and store nothing."""

import gzip
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import load_settings
from rae.datasets.bundled import esci_us
from rae.datasets.judgment_reading import read_judgment_file
from rae.datasets.rating_scales import RatingError, check_ratings, rating_scale
from rae.datasets.searchlog import query_id_for, read_search_log
from rae.datasets.ubi_events import ResultEvent
from rae.errors import RaeError
from rae.interop.click_judgments import coec_scores
from rae.labels import Label
from rae.store.human_labels import latest_ratings
from rae.workspace import Workspace
from tests.test_peer_files import PEERS, SRW_ESCI, ok, rae, refused, stored

E, S, I = Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT  # noqa: E741 - the ESCI letters
CASE = PEERS / "haystack_rating_party_case.json.zip"
SNAPSHOT = PEERS / "haystack_rating_party_snapshot_vector-2.json.zip"
QUEPID_RRE = PEERS / "quepid_mock_rre_json.json"
RRE_EXAMPLE = PEERS / "rre_ratings_example.json"
UBI = PEERS / "srw_ubi_queries_events.ndjson.gz"


def unzipped(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(next(n for n in archive.namelist() if not n.startswith("__MACOSX/"))))


def by_pair() -> dict[tuple[str, str, str], Label]:
    return {(r.rater, r.query, r.product_id): r.label for r in stored()}


# Quepid's case export: zipped with a __MACOSX/ entry, each rating's judge by user_email, its scorer's scale


def test_quepids_case_export_imports_unchanged_each_judge_a_rater_on_its_scorers_scale(project):
    case = unzipped(CASE)
    expected = Counter(r["user_email"] for q in case["queries"] for r in q["ratings"] if r["rating"] is not None)
    out = ok("judgments", "import", str(CASE))
    assert "format quepid-case: from the file's content" in out and "scale 0-3: the file's scorer nDCG@10" in out
    assert f"imported {sum(expected.values())} labels" in out
    assert Counter(r.rater for r in stored()) == expected
    first = case["queries"][0]
    for rating in first["ratings"]:
        label = by_pair()[(rating["user_email"], first["query_text"], rating["doc_id"])]
        assert label == {0: I, 1: S, 2: E, 3: E}[rating["rating"]]


def test_quepids_snapshot_export_reads_its_ratings_map_as_the_cases_ratings(project):
    snapshot = unzipped(SNAPSHOT)
    out = ok("judgments", "import", str(SNAPSHOT), "--rater", "haystack-case")
    count = sum(len(q["ratings"]) for q in snapshot["queries"])
    assert f"imported {count} labels" in out and "format quepid-snapshot" in out
    query = next(q for q in snapshot["queries"] if q["query_text"] == "projector screen")
    labels = by_pair()
    for doc, rating in query["ratings"].items():
        assert labels[("haystack-case", "projector screen", doc)] == {0.0: I, 1.0: S, 2.0: E, 3.0: E}[rating]


@pytest.mark.parametrize(("path", "edit", "message"), [
    (CASE, lambda c: c["queries"][1].update(ratings={"3488015": 1}), "queries[1].ratings: expected a list of {doc_id, rating}, found an object"),
    (CASE, lambda c: c["queries"][2]["ratings"][0].update(doc_id=""), "queries[2].ratings[0]: a rating needs a doc_id"),
    (SNAPSHOT, lambda s: s["queries"][3].pop("query_text"), "queries[3]: a query needs its query_text"),
])
def test_a_malformed_quepid_export_is_one_line_at_its_line_and_stores_nothing(project, path, edit, message):
    document = unzipped(path)
    edit(document)
    bad = project / "bad.json"
    bad.write_text(json.dumps(document, indent=2))
    error = refused("judgments", "import", str(bad))
    assert error.startswith(f"{bad}:") and message in error
    line = int(error.split(":")[1])
    assert line > 1 and stored() == []


# Quepid's detailed CSV: columns by name, CRLF, quoted commas, a short row for a query with no results, a 1-4 scale


def quepid_field(value) -> str:
    """caseCSVSvc.js's stringifyField: trimmed, quotes doubled, quoted when it holds a comma or a line break, and a
    space before a leading = @ + -."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    text = value.strip().replace('"', '""')
    if any(c in text for c in ",\n\r"):
        text = f'"{text}"'
    return f" {text}" if text.startswith(("=", "@", "+", "-")) else text


def detailed_csv(rows: list[list], header: list[str]) -> str:
    return "".join(",".join(quepid_field(v) for v in row) + "\r\n" for row in [header, *rows])


DETAILED_HEADER = ["Team Name", "Case Name", "Case ID", "Query Text", "Doc ID", "Doc Position", "Title", "Rating", "brand", "price"]
DETAILED_ROWS = [
    ["Search, Inc.", "Haystack", 7, "usb c cable, 2m", "B01", 1, 'Anker "PowerLine" USB-C, 2m', 4, "Anker", 12.99],
    ["Search, Inc.", "Haystack", 7, "usb c cable, 2m", "B02", 2, "Cable", 2, "NoName", 3.5],
    ["Search, Inc.", "Haystack", 7, "usb c cable, 2m", "B03", 3, "Charger", None, "Anker", 20],
    ["Search, Inc.", "Haystack", 7, "-20% sale", "B04", 1, "Sale item", 1, "", 1],
    ["Search, Inc.", "Haystack", 7, "nothing found"],
    ["Search, Inc.", "Haystack", 7, "usb c cable, 2m", "B05", 4, "Hub", 3, "Anker", 30],
    ["Search, Inc.", "Haystack", 7, 'tv 55"', "B06", 1, 'Samsung 55" QLED', 4, "Samsung", 499],  # quotes doubled, unquoted
]


def test_quepids_detailed_csv_reads_by_column_name_and_asks_for_its_scale(project):
    path = project / "Haystack_detailed.csv"
    path.write_text(detailed_csv(DETAILED_ROWS, DETAILED_HEADER), newline="")
    error = refused("judgments", "import", str(path))
    assert "0-3 cannot read the rating 4" in error and "--scale 1-4 would read 1 as irrelevant, 2 as acceptable_substitute" in error
    out = ok("judgments", "import", str(path), "--scale", "1-4", "--rater", "team")
    assert "format quepid-detailed" in out and "imported 5 labels of 5 pairs (team)" in out  # B03 unrated, the empty query skipped
    labels = by_pair()
    assert labels[("team", "usb c cable, 2m", "B01")] == E and labels[("team", "-20% sale", "B04")] == I
    assert labels[("team", 'tv 55"', "B06")] == E  # caseCSVSvc wrote 'tv 55""': Quepid doubles quotes even unquoted
    assert labels[("team", "usb c cable, 2m", "B02")] == S


def test_the_fields_a_detailed_csv_shows_become_the_catalogs_text_for_products_it_lacks(project):
    path = project / "Haystack_detailed.csv"
    path.write_text(detailed_csv(DETAILED_ROWS, DETAILED_HEADER), newline="")
    out = ok("judgments", "import", str(path), "--scale", "1-4", "--rater", "team")
    assert "kept the text (title, brand, price) of 6 products the file shows: 6 the catalog does not have" in out  # B03 unrated, shown
    assert "kept the text (title, brand, price) of 6 products the file shows: 6 the catalog does not have" in ok(
        "judgments", "import", str(path), "--scale", "1-4", "--rater", "team")  # again: what the first import kept is no catalog of the team's
    catalog = Workspace(load_settings()).labelled.catalog
    assert catalog["B01"].title == 'Anker "PowerLine" USB-C, 2m' and catalog["B01"].brand == "Anker" and catalog["B01"].price == 12.99
    assert catalog["B04"].brand == "" and catalog["B03"].title == "Charger" and catalog["B06"].title == 'Samsung 55" QLED'
    assert len(catalog) == len(esci_us().catalog) + 6
    with_team = Workspace(load_settings().with_overrides(with_reviews=True)).labelled  # what annotate and agreement judge
    assert {(p.query, p.product_id) for p in with_team.pairs("all")} >= {("usb c cable, 2m", "B01"), ("-20% sale", "B04")}


def test_a_books_document_fields_are_kept_and_the_catalogs_own_text_wins(project):
    esci_id, esci = next(iter(esci_us().catalog.items()))
    book = {"name": "b", "scale": [0, 1, 2, 3], "query_doc_pairs": [
        {"query_text": "projector screen", "doc_id": "325961", "position": 1,
         "document_fields": json.dumps({"name": "ProScreen", "brand": "Projecta", "title": "Projecta ProScreen 120in", "thumb": "http://img/325961.jpg"}),
         "judgements": [{"rating": 3.0, "user_email": "a@b.co"}]},
        {"query_text": "projector screen", "doc_id": esci_id, "document_fields": json.dumps({"title": "Another title"}),
         "judgements": [{"rating": 1.0, "user_email": "a@b.co"}]},
        {"query_text": "projector screen", "doc_id": "no-fields", "document_fields": "not json", "judgements": [{"rating": 0.0, "user_email": "a@b.co"}]},
    ]}
    path = project / "book.json"
    path.write_text(json.dumps(book))
    out = ok("judgments", "import", str(path))
    assert "kept the text (title, brand, image) of 2 products the file shows: 1 the catalog does not have" in out
    assert "1 the catalog has, whose own text rae keeps using" in out
    catalog = Workspace(load_settings()).labelled.catalog
    assert catalog["325961"].title == "Projecta ProScreen 120in" and catalog["325961"].image == "http://img/325961.jpg"
    assert catalog[esci_id].title == esci.title and "no-fields" not in catalog


def test_an_older_detailed_csv_without_doc_position_and_columns_moved_reads_too(project):
    header = ["Query Text", "Rating", "Doc ID", "Title", "Team Name"]
    rows = [["dog bed", 3, "D1", "Bed", "T"], ["dog bed", 0, "D2", "Bowl", "T"]]
    path = project / "older.csv"
    path.write_text(detailed_csv(rows, header), newline="")
    assert "imported 2 labels" in ok("judgments", "import", str(path), "--format", "quepid-detailed")


def test_a_detailed_csv_row_with_a_field_too_many_is_one_line_at_its_line(project):
    path = project / "bad.csv"
    path.write_text(detailed_csv(DETAILED_ROWS[:2], DETAILED_HEADER) + "Team,Case,7,q,B9,1,T,2,brand,1,extra\r\n", newline="")
    error = refused("judgments", "import", str(path), "--scale", "1-4")
    assert error.startswith(f"{path}:4: expected 10 fields") and stored() == []


# RRE: Rated Ranking Evaluator's own example (topics, groups, a group's documents shared by its queries) and
# Quepid's RRE import fixture (grades as keys); rae's export read as both importers read it


def test_rres_own_example_gives_each_query_its_groups_documents(project):
    out = ok("judgments", "import", str(RRE_EXAMPLE), "--rater", "rre")
    assert "format rre" in out
    example = json.loads(RRE_EXAMPLE.read_text())
    groups = [g for t in example["topics"] for g in t["query_groups"]]
    texts = {q["placeholders"]["$query"].lower() for g in groups for q in g["queries"]}
    labels = by_pair()
    assert {query.lower() for _, query, _ in labels} == texts
    fender = next(g for g in groups if g["name"] == "Brand search")
    assert "ratings repeat a rater's rating of the same pair: stored once" in out  # 'Fender' is 'fender' again
    for query in {q["placeholders"]["$query"].lower() for q in fender["queries"]}:
        for doc, value in fender["relevant_documents"].items():  # the group's documents, each of its queries'
            assert next(label for (_, q, d), label in labels.items() if q.lower() == query and d == doc) == {1: S, 2: E, 3: E}[value["gain"]]


def test_quepids_rre_fixture_reads_grades_as_keys(project):
    ok("judgments", "import", str(QUEPID_RRE), "--rater", "rre")
    labels = by_pair()
    assert labels[("rre", "star trek", "193")] == S and labels[("rre", "star trek", "157")] == E
    assert labels[("rre", "star wars", "12180")] == S and len(labels) == 6


def test_rae_writes_rre_as_rres_engine_and_quepids_importer_read_it(project):
    ok("judgments", "import", str(SRW_ESCI), "--format", "srw", "--scale", "srw-esci", "--rater", "srw")
    out = project / "ratings.json"
    ok("judgments", "export", str(out), "--format", "rre", "--labels", "human", "--rated", "--rater", "srw", "--scale", "0-3")
    ratings = json.loads(out.read_text())
    assert ratings["index"] and ratings["id_field"]  # RRE's Engine requires both (requireNonNull)
    quepid_rows = []
    for query in ratings["queries"]:  # Api::V1::Import::RatingsController, file_format 'rre'
        text = query["placeholders"]["$query"]
        documents = query["relevant_documents"]
        assert isinstance(next(iter(documents.values())), list)  # RRE's gainToArrayMode: grades as keys
        for grade, doc_ids in documents.items():
            int(grade)  # RRE: Integer.parseInt
            quepid_rows += [(text, doc, int(grade)) for doc in doc_ids]
    srw = {(e["query"], r["docId"]): float(r["rating"]) for e in json.loads(SRW_ESCI.read_text())["judgmentRatings"] for r in e["ratings"]}
    assert len(quepid_rows) == len(srw)
    assert all({100.0: 3, 10.0: 1, 1.0: 0, 0.0: 0}[srw[(q, d)]] == g for q, d, g in quepid_rows)


def test_an_rre_document_without_a_gain_is_one_line_at_its_line(project):
    bad = project / "rre.json"
    bad.write_text(QUEPID_RRE.read_text().replace('"1": [\n          "193"\n        ],', '"193": {"grade": 1},'))
    error = refused("judgments", "import", str(bad), "--format", "rre")
    assert error.startswith(f"{bad}:11: queries[0].relevant_documents.193: a relevant document needs its gain") and stored() == []


def test_the_read_only_peer_formats_are_refused_on_export_with_what_carries_ratings_back(project):
    messages = {}
    for fmt in ("quepid-snapshot", "quepid-detailed"):
        result = CliRunner().invoke(app, ["judgments", "export", str(project / "x.json"), "--format", fmt])
        assert result.exit_code != 0 and not (project / "x.json").exists()
        messages[fmt] = str(result.exception)
    assert all("write quepid-case, quepid-book, quepid-csv, quepid-ltr or rre" in m for m in messages.values())
    assert "`rae lists export --case-id N` writes an evaluation's" in messages["quepid-snapshot"]


# UBI as OpenSearch ships it, and clicks as a rater


def test_a_ubi_log_named_json_is_read_from_its_content(project):
    log = project / "ubi_events.json"
    log.write_bytes(gzip.decompress(UBI.read_bytes()))
    counts = read_search_log(log)
    bulk = [json.loads(line) for line in log.read_text().splitlines()]
    searches = {d["query_id"]: d["user_query"] for d in bulk if "user_query" in d and "query_id" in d and "action_name" not in d}
    assert sum(counts.values()) >= len(searches) and "portable charger" in counts
    assert "wrote 9 queries" in ok("queries", "sample", "--log", str(log), "--size", "9", "--out", "q.json")


def test_coec_is_clicks_over_the_clicks_expected_at_the_best_position():
    events = [ResultEvent(0, "q", "impression", "a", 0), ResultEvent(0, "q", "click", "a", 0),
              ResultEvent(0, "q", "impression", "b", 1), ResultEvent(0, "r", "impression", "c", 0),
              ResultEvent(0, "r", "impression", "d", 1), ResultEvent(0, "r", "click", "d", 1),
              ResultEvent(0, "r", "impression", "d", 3)]
    scores = {(s.query, s.product_id): s for s in coec_scores(events, max_rank=20)}
    # position 0: 1 click of 2 impressions; position 1: 1 of 2; d's best position is 1, with 2 impressions
    assert scores[("q", "a")].score == 2.0 and scores[("q", "b")].score == 0.0
    assert scores[("r", "d")].score == 1.0 and scores[("r", "d")].rank == 1 and scores[("r", "c")].score == 0.0


def test_judgments_from_srws_ubi_sample_are_a_rater_set_beside_the_humans(project):
    out = ok("judgments", "from-clicks", str(UBI))
    clicks = latest_ratings(Workspace(load_settings()).store, "clicks")
    assert f"stored {len(clicks)} click judgments (clicks:coec)" in out and "Clicks and humans" in out
    assert {r.rater for r in clicks} == {"clicks:coec"} and stored() == []  # a rater of kind clicks, never a human label
    labelled = {(j.query_id, j.product_id) for j in esci_us().judgments}
    shared = sum((r.query_id, r.product_id) in labelled for r in clicks)
    assert shared > 0 and f"clicks vs original: {shared} pairs" in out
    assert f"clicks vs original: {shared} pairs" in ok("agreement", "--clicks")


def test_srw_implicit_judgments_are_refused_without_a_scale_and_read_with_thresholds(project):
    scores = [(f"query {i % 7}", f"doc{i}", f"{v:.3f}") for i, v in enumerate([0.0] * 40 + [0.4 * k for k in range(1, 30)])]
    body = [{"query": q, "ratings": [{"docId": d, "rating": r} for qq, d, r in scores if qq == q]} for q in sorted({s[0] for s in scores})]
    path = project / "implicit.json"
    path.write_text(json.dumps(body))
    error = refused("judgments", "import", str(path), "--format", "srw")
    assert "thresholds:" in error and "--scale 0-12" in error and "percent" not in error
    merging = refused("judgments", "import", str(path), "--format", "srw", "--scale", "percent")
    assert "merging classes" in merging and "percent" not in merging.split("merging classes")[1]
    out = ok("judgments", "import", str(path), "--format", "srw", "--scale", "thresholds:0.5,2", "--rater", "implicit")
    assert "imported 69 labels" in out
    mix = Counter(r.label for r in stored())
    assert mix[I] == 41 and mix[S] == 3 and mix[E] == 25


def test_thresholds_are_two_rising_numbers():
    with pytest.raises(RatingError, match="must be below the second"):
        rating_scale("thresholds:2,0.5")
    check_ratings(rating_scale("thresholds:0.5,2"), ["0", "0.7", "14.2"])


# A rater's rating of a pair, repeated


def test_srw_query_blocks_that_repeat_are_stored_once_and_a_changed_rating_is_refused_with_both_lines(project):
    body = json.loads(SRW_ESCI.read_text())["judgmentRatings"]
    repeated = project / "repeated.json"
    repeated.write_text(json.dumps(body + body[:2], indent=1))
    out = ok("judgments", "import", str(repeated), "--scale", "srw-esci", "--rater", "srw")
    repeats = len(body[0]["ratings"]) + len(body[1]["ratings"])
    assert "imported 6678 labels of 6678 pairs" in out and f"{repeats} ratings repeat a rater's rating of the same pair: stored once" in out
    changed = json.loads(json.dumps(body[:1]))
    changed[0]["ratings"][0]["rating"] = "0.000" if float(body[0]["ratings"][0]["rating"]) else "100.000"
    conflict = project / "conflict.json"
    conflict.write_text(json.dumps(body[:1] + changed, indent=1))
    error = refused("judgments", "import", str(conflict), "--scale", "srw-esci", "--rater", "other")
    lines = conflict.read_text().split("\n")
    first, second = (i + 2 for i, line in enumerate(lines) if line == '  "ratings": [')  # the first rating, one line below
    assert error.startswith(f"{conflict}:{second}: other rates") and f"at line {first}: which one holds?" in error
    assert [r for r in stored() if r.rater == "other"] == []


def test_the_bundled_sets_query_ids_are_kept_for_peer_files(project):
    ok("judgments", "import", str(QUEPID_RRE), "--rater", "rre")
    ids = {r.query_id for r in stored()}
    assert ids == {query_id_for("star trek"), query_id_for("star wars")}
    assert not ids & {j.query_id for j in esci_us().judgments}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("ordinal", "top", "event_attributes.position.ordinal 'top' is not a whole number"),
    ("timestamp", "yesterday", "timestamp 'yesterday' is neither an ISO time nor epoch milliseconds"),
])
def test_a_malformed_ubi_event_is_one_line_at_its_line_and_stores_nothing(project, field, value, message):
    lines = gzip.decompress(UBI.read_bytes()).decode().split("\n")
    at = next(i for i, line in enumerate(lines) if '"action_name": "click"' in line and '"ordinal"' in line)
    event = json.loads(lines[at])
    if field == "ordinal":
        event["event_attributes"]["position"]["ordinal"] = value
    else:
        event["timestamp"] = value
    lines[at] = json.dumps(event)
    log = project / "ubi_events.json"
    log.write_text("\n".join(lines))
    error = refused("judgments", "from-clicks", str(log))
    assert error == f"{log}:{at + 1}: {message}"
    assert latest_ratings(Workspace(load_settings()).store, "clicks") == []


# Quepid's LTR text: its importer's own test lines, and what rae writes read as that importer reads it


def quepid_rating_from_ltr_line(line: str) -> dict[str, str]:
    """Api::V1::Import::RatingsController#rating_from_ltr_line, ported (Ruby's inclusive ranges included)."""
    line = line.strip()
    first = line.index(" ")
    rating = line[: first + 1].strip()
    line = line[first:].strip()
    line = line[line.index("#") + 1 :].strip()
    end = line.index(" ")
    return {"rating": rating, "doc_id": line[: end + 1].strip(), "query_text": line[end:].strip()}


def test_quepids_own_ltr_lines_read_as_its_importer_reads_them(project):
    path = project / "case_ltr.txt"
    path.write_text('0    qid:2 #    9755 "star trek"\n\n 3    qid:2 #    9756 star trek\n')
    out = ok("judgments", "import", str(path), "--rater", "quepid")
    assert "format quepid-ltr: from the file's content" in out and "imported 2 labels" in out
    labels = by_pair()
    assert labels[("quepid", '"star trek"', "9755")] == I and labels[("quepid", "star trek", "9756")] == E


def test_the_ltr_rae_writes_passes_quepids_ltr_importer(project):
    ok("judgments", "import", str(SRW_ESCI), "--format", "srw", "--scale", "srw-esci", "--rater", "srw")
    out = project / "ratings_ltr.txt"
    ok("judgments", "export", str(out), "--format", "quepid-ltr", "--labels", "human", "--rated", "--rater", "srw")
    rows = [quepid_rating_from_ltr_line(line) for line in re.split(r"\n+", out.read_text()) if line.strip()]
    srw = {(e["query"], r["docId"]): float(r["rating"]) for e in json.loads(SRW_ESCI.read_text())["judgmentRatings"] for r in e["ratings"]}
    assert len(rows) == len(srw)
    assert all({100.0: "3", 10.0: "1", 1.0: "0", 0.0: "0"}[srw[(r["query_text"], r["doc_id"])]] == r["rating"] for r in rows)


def test_an_ltr_line_without_its_doc_id_is_one_line_at_its_line(project):
    path = project / "bad_ltr.txt"
    path.write_text("3 qid:1 # 193 star trek\n2 qid:1 star trek\n")
    error = refused("judgments", "import", str(path), "--format", "quepid-ltr")
    assert error.startswith(f"{path}:2: expected '<rating> qid:<n> # <doc id> <query>'") and stored() == []


# An evaluation's lists as the snapshot CSV Quepid imports, read back by a port of its reader


def quepid_snapshot_import(text: str) -> dict:
    """import_snapshot_controller.js: validateCSV (the six headers, by name), parseCSV (lines split on '\\n', values on
    every comma and trimmed, a line whose count differs from the header's skipped), importSnapshots (by case id, then
    snapshot name, then query text, each doc its id and position)."""
    lines = text.strip().split("\n")
    headers = [h.strip() for h in lines[0].split(",")]
    missing = [h for h in ("Snapshot Name", "Snapshot Time", "Case ID", "Query Text", "Doc ID", "Doc Position") if h not in headers]
    assert len(lines) >= 2 and not missing, missing
    cases: dict = {}
    for line in lines[1:]:
        values = [v.strip() for v in line.split(",")]
        if len(values) != len(headers):
            continue
        row = dict(zip(headers, values, strict=True))
        snapshot = cases.setdefault(row["Case ID"], {}).setdefault(row["Snapshot Name"], {"created_at": row["Snapshot Time"], "queries": {}})
        snapshot["queries"].setdefault(row["Query Text"], []).append({"id": row["Doc ID"], "position": row["Doc Position"]})
    return cases


def test_an_evaluations_lists_go_to_quepid_as_snapshots_of_its_engines(project, scripted_workspace):
    ok("evaluate", "--engines", "bm25-title,bm25-full", "--queries", "4", "--no-mlflow")
    out = ok("lists", "export", "snap.csv", "--case-id", "2098")
    assert "wrote 2 snapshots of evaluation" in out and "bm25-title (" in out and "left out" not in out
    imported = quepid_snapshot_import((project / "snap.csv").read_text())
    assert list(imported) == ["2098"] and set(imported["2098"]) == {"bm25-title", "bm25-full"}
    run = next((project / "reports").glob("*/runs/bm25-full.trec")).parent.parent
    texts = {q["query_id"]: q["text"] for q in json.loads((run / "queries.json").read_text())}
    ranked: dict = {}
    for line in (run / "runs" / "bm25-full.trec").read_text().splitlines():
        qid, _, doc, rank, *_ = line.split()
        ranked.setdefault(texts[qid], []).append((int(rank), doc))
    got = imported["2098"]["bm25-full"]["queries"]
    assert {q: [d["id"] for d in docs] for q, docs in got.items()} == {q: [d for _, d in sorted(r)] for q, r in ranked.items()}
    assert all([int(d["position"]) for d in docs] == list(range(1, len(docs) + 1)) for docs in got.values())
    result = rae("lists", "export", "x.csv", "--case-id", "1", "--engines", "bm25-desc")
    assert isinstance(result.exception, RaeError) and "has no engine bm25-desc (it has bm25-title, bm25-full)" in str(result.exception)


def test_a_query_quepids_snapshot_reader_would_split_is_left_out_and_named(tmp_path):
    from datetime import UTC, datetime

    from rae.retrieve.quepid_snapshot import write_quepid_snapshot

    path = tmp_path / "snap.csv"
    written = write_quepid_snapshot(path, {"bm25": {"usb c cable, 2m": ["B1", "B2"], "dog bed": ["D1", "D2", "D3"]}}, 7, datetime(2026, 1, 2, tzinfo=UTC))
    assert written.left_out == ["usb c cable, 2m"] and written.rows == {"bm25": 3}
    imported = quepid_snapshot_import(path.read_text())
    assert imported == {"7": {"bm25": {"created_at": "2026-01-02T00:00:00+00:00", "queries": {"dog bed": [
        {"id": "D1", "position": "1"}, {"id": "D2", "position": "2"}, {"id": "D3", "position": "3"}]}}}}


# A Quepid case written back: its ratings, and the search Quepid runs taken from one of rae's engines

CASE_ENGINES = """
[engines.prod-os]
kind = "opensearch"
url = "https://search.example.com:9200/products/_search"
query = '{"query": {"multi_match": {"query": "{{query}}", "fields": ["title^3", "brand"]}}, "size": {{k}}, "_source": ["asin", "product_title", "brand"]}'
id_field = "asin"
auth = { username_env = "OS_USER", password_env = "OS_PASSWORD" }

[engines.prod-solr]
kind = "solr"
url = "http://solr.example.com:8983/solr/products/select"
def_type = "edismax"
qf = "title^3 description"
fl = "asin,score"
"""
QUEPID_SEEDED_SCORERS = {"nDCG@10", "DCG@10", "CG@10", "P@10", "AP@10"}  # db/seeds.rb
COLUMNS = {  # db/schema.rb: what CaseImporter builds each record from
    "query": {"arranged_at", "arranged_next", "information_need", "notes", "options", "query_text"},
    "rating": {"doc_id", "rating"},
    "try": {"ancestry", "escape_query", "field_spec", "name", "number_of_rows", "query_params"},
    "search_endpoint": {"api_method", "archived", "basic_auth_credential", "custom_headers", "endpoint_url", "mapper_code", "name", "options",
                        "proxy_requests", "requests_per_minute", "search_engine", "test_query"},
}


def assert_quepid_imports_case(case: dict, users: set[str]) -> None:
    """CaseImporter as o19s/quepid runs it: ``validate`` (the scorer exists by name, every ``user_email`` is a user),
    then ``import``: each query built from ``query.except(:ratings)`` and each rating from ``rating.except(:user_email)``
    (so every other key must be a column), the search endpoint found or created from ``try.search_endpoint``
    (``SearchEndpoint`` validates search_engine, endpoint_url and api_method present; JSONP not with proxy_requests),
    and the first try updated from ``try.except(:curator_variables, :search_endpoint, :id)``."""
    assert case["case_name"] and case["scorer"]["name"] in QUEPID_SEEDED_SCORERS
    endpoint = case["try"]["search_endpoint"]
    assert all(endpoint.get(k) for k in ("search_engine", "endpoint_url", "api_method")) and set(endpoint) <= COLUMNS["search_endpoint"]
    assert endpoint["search_engine"] in ("solr", "es", "os") and not (endpoint["proxy_requests"] and endpoint["api_method"] == "JSONP")
    assert set(case["try"]) - {"curator_variables", "search_endpoint", "id"} <= COLUMNS["try"] and len(case["try"]["name"]) <= 50
    for query in case["queries"]:
        assert set(query) - {"ratings"} <= COLUMNS["query"] and 0 < len(query["query_text"]) <= 2048
        for rating in query["ratings"]:
            assert set(rating) - {"user_email"} <= COLUMNS["rating"] and rating["doc_id"] and isinstance(rating["rating"], int | float)
            assert rating.get("user_email") is None or rating["user_email"] in users


def test_a_quepid_case_goes_back_with_its_raters_and_the_search_of_a_rae_engine(project):
    (project / "rae.toml").write_text((project / "rae.toml").read_text() + CASE_ENGINES)
    ok("judgments", "import", str(CASE))
    out = ok("judgments", "export", "case.json", "--format", "quepid-case", "--labels", "human", "--rated", "--engine", "prod-os", "--name", "Haystack")
    case = json.loads((project / "case.json").read_text())
    raters = {r.rater for r in stored()}
    assert_quepid_imports_case(case, raters)
    assert case["scorer"] == {"name": "nDCG@10"} and case["try"]["search_endpoint"]["search_engine"] == "os"
    assert '"query": "#$query##"' in case["try"]["query_params"] and '"size": 10' in case["try"]["query_params"]
    assert case["try"]["field_spec"] == "id:asin, title:product_title, brand" and "credentials are not written" in out
    assert "OS_USER" not in (project / "case.json").read_text() and "OS_PASSWORD" not in (project / "case.json").read_text()
    written = {(q["query_text"], r["doc_id"], r["user_email"], r["rating"]) for q in case["queries"] for r in q["ratings"]}
    assert len(written) == len(stored()) and {e for _, _, e, _ in written} == raters  # every rater's rating, under its email
    again = read_judgment_file(project / "case.json", None)  # rae reads what it wrote as a case, labels unchanged
    assert again.fmt == "quepid-case" and len(again.entries) == len(written)

    solr = ok("judgments", "export", "solr.json", "--format", "quepid-case", "--labels", "human", "--rated", "--engine", "prod-solr")
    solr_try = json.loads((project / "solr.json").read_text())["try"]
    assert solr_try["query_params"] == "q=#$query##&defType=edismax&qf=title^3 description" and solr_try["field_spec"] == "id:asin, title:title"
    assert solr_try["search_endpoint"]["api_method"] == "GET" and "credentials" not in solr


def test_a_quepid_case_needs_an_engine_quepid_can_query_and_its_scorers_scale(project):
    (project / "rae.toml").write_text((project / "rae.toml").read_text() + CASE_ENGINES)
    base = ("judgments", "export", "case.json", "--format", "quepid-case", "--labels", "human", "--split", "dev", "--queries", "1")
    no_engine = rae(*base)
    assert isinstance(no_engine.exception, RaeError) and "--engine NAME, one of your opensearch, elasticsearch or solr engines (prod-os, prod-solr)" in str(no_engine.exception)
    in_rae = rae(*base, "--engine", "bm25-title")
    assert "engine bm25-title (bm25) runs where Quepid cannot query it" in str(in_rae.exception)
    five = rae(*base, "--engine", "prod-os", "--scale", "1-5")
    assert "Quepid's scorers rate 0-3 (nDCG@10) or 0-1 (P@10)" in str(five.exception)
    assert not (project / "case.json").exists()
    ok(*base, "--engine", "prod-os", "--scale", "0-1")
    assert json.loads((project / "case.json").read_text())["scorer"] == {"name": "P@10"}

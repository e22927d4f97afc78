"""Judgment lists read exactly as the tools that write them do, before any rating becomes a label.

- ``trec``: TREC qrels, ``qid iter docid rel``, queries named by rae's ids.
- ``quepid-csv``: Quepid's case export, ``query,docid,rating``; a query with no rated document is a row of its own
  and a cell starting with ``- = + @`` has a leading space (Quepid's ``make_csv_safe``).
- ``quepid-judgements``: a Quepid book's judgements CSV, ``query,docid,<judge>,<judge>...``, a column a judge.
- ``quepid-book``, ``quepid-case``, ``quepid-snapshot``, ``quepid-detailed``, ``quepid-ltr``: Quepid's exports, JSON or zipped as
  Quepid hands them out (``rae.datasets.quepid_files``).
- ``rre``: Rated Ranking Evaluator's ratings, and Quepid's RRE export (``rae.datasets.rre_ratings``).
- ``srw``: OpenSearch Search Relevance Workbench's judgment import body (``judgmentRatings``), or its bare list.
- ``srw-csv``: SRW's CSV upload, ``query,docid,rating``, the header row optional, as SRW's own parser allows.
- ``csv`` and ``jsonl``: rae's own, a label a row (query_id, query, product_id, label, rater, explanation).

A file reads as ``Entry`` records, each rating as it is written: which scale turns them into labels is decided once
the whole file is read (``rae.datasets.rating_scales.check_ratings``). A file whose shape is wrong is one
``DataFileError`` naming the line.
"""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from rae.datasets.judgment_entries import Entry, Format, JudgmentFile, csv_lines, file_text
from rae.datasets.judgment_formats import format_of
from rae.datasets.located_json import LocatedJson
from rae.datasets.quepid_files import read_book, read_case, read_detailed_csv, read_judgements_csv, read_ltr, read_snapshot
from rae.datasets.readers import DataFileError, read_rows
from rae.datasets.rre_ratings import read_rre

RATING_HEADER = ["query", "docid", "rating"]


JSON_READERS = {"quepid-book": read_book, "quepid-case": read_case, "quepid-snapshot": read_snapshot, "rre": read_rre}


def read_judgment_file(path: Path, fmt: Format | None) -> JudgmentFile:
    """The file's entries, read as ``fmt``, or as the format its content shows (``JudgmentFile.detected``)."""
    text = file_text(path)
    found = fmt or format_of(path, text)
    return replace(_read(path, found, text), fmt=found, detected=fmt is None)


def _read(path: Path, fmt: Format, text: str) -> JudgmentFile:
    if fmt == "trec":
        return JudgmentFile(path, list(_trec(path, text)))
    if fmt in ("quepid-csv", "srw-csv"):
        return JudgmentFile(path, list(_rating_csv(path, text, header_optional=fmt == "srw-csv")))
    if fmt == "quepid-judgements":
        return JudgmentFile(path, list(read_judgements_csv(path, text)))
    if fmt == "quepid-detailed":
        return read_detailed_csv(path, text)
    if fmt == "quepid-ltr":
        return JudgmentFile(path, list(read_ltr(path, text)))
    if fmt in JSON_READERS:
        return JSON_READERS[fmt](LocatedJson.parse(str(path), text), path)
    if fmt == "srw":
        located = LocatedJson.parse(str(path), text)
        return JudgmentFile(path, list(_srw(located)), json=located)
    return JudgmentFile(path, list(_rae(path, fmt)))


def _trec(path: Path, text: str) -> Iterator[Entry]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DataFileError(path, number, f"expected 'qid 0 docid rel', found {len(parts)} fields")
        qid, _, docid, rel = parts
        yield Entry(number, "", docid, rel, query_id=qid)


def _rating_csv(path: Path, text: str, header_optional: bool) -> Iterator[Entry]:
    lines = csv_lines(path, text)
    first = next(lines, None)
    if first is None:
        return
    number, cells = first
    if [c.lower() for c in cells] != RATING_HEADER:
        if not header_optional or len(cells) != 3:
            raise DataFileError(path, number, f"expected the header query,docid,rating, found {','.join(cells)}{_csv_hint(cells)}")
        lines = iter([first, *lines])  # SRW's CSV may start with data
    for number, cells in lines:
        if len(cells) == 1 or (len(cells) == 3 and not cells[1]):
            continue  # a query with no rated document (Quepid writes the query alone)
        if len(cells) != 3:
            raise DataFileError(path, number, f"expected 3 fields (query,docid,rating), found {len(cells)}")
        query, docid, rating = cells
        if not rating:
            continue  # an unrated document (Quepid's snapshot export)
        if not query:
            raise DataFileError(path, number, "a rating without a query")
        yield Entry(number, query, docid, rating)


def _csv_hint(cells: list[str]) -> str:
    lowered = [c.lower() for c in cells]
    if lowered[:2] == ["query", "docid"] and len(cells) > 2 and "rating" not in lowered:
        return " (a column a judge is a Quepid book's judgements CSV: --format quepid-judgements)"
    return ""


def _srw(body: LocatedJson) -> Iterator[Entry]:
    value, where = body.value, ()
    if isinstance(value, dict):  # the import request's body; a bare list is what SRW stores and shows
        if "judgmentRatings" not in value:
            raise body.error((), "not an SRW judgment import: no judgmentRatings")
        value, where = value["judgmentRatings"], ("judgmentRatings",)
    body.expect(value, list, where, "a list of {query, ratings}")
    for i, entry in enumerate(value):
        body.expect(entry, dict, (*where, i), "an object with query and ratings")
        query = str(entry.get("query") or "").strip()
        ratings = body.expect(entry.get("ratings"), list, (*where, i, "ratings"), "a list of {docId, rating}")
        for j, rating in enumerate(ratings):
            at = (*where, i, "ratings", j)
            body.expect(rating, dict, at, "an object with docId and rating")
            docid = str(rating.get("docId") or "").strip()
            if not query or not docid:
                raise body.error(at, "a judgment rating needs a query and a non-empty docId")
            if rating.get("rating") is None:
                raise body.error(at, f"no rating for docId {docid}")
            yield Entry(None, query, docid, str(rating["rating"]), at=at)


def _rae(path: Path, fmt: str) -> Iterator[Entry]:
    for row in read_rows(path, required=("query_id", "query", "product_id", "label"), fmt="jsonl" if fmt == "jsonl" else "csv"):
        yield Entry(row.line, str(row.get("query")), str(row.get("product_id")), str(row.get("label")), rater=str(row.get("rater") or ""),
                    note=str(row.get("explanation") or ""), query_id=str(row.get("query_id")))

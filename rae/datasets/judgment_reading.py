"""Judgment lists read exactly as the tools that write them do, before any rating becomes a label.

- ``trec``: TREC qrels, ``qid iter docid rel``, queries named by rae's ids.
- ``quepid-csv``: Quepid's case export, ``query,docid,rating``; a query with no rated document is a row of its own
  and a cell starting with ``- = + @`` has a leading space (Quepid's ``make_csv_safe``).
- ``quepid-judgements``: a Quepid book's judgements CSV, ``query,docid,<judge>,<judge>...``, a column a judge.
- ``quepid-book``: Quepid's book export (JSON, or the ``.json.zip`` Quepid hands out), ``query_doc_pairs`` each with
  ``judgements``; the book names its judges (``user_email``) and its scale (``scale``, or its scorer's name).
- ``srw``: OpenSearch Search Relevance Workbench's judgment import body (``judgmentRatings``), or its bare list.
- ``srw-csv``: SRW's CSV upload, ``query,docid,rating``, the header row optional, as SRW's own parser allows.
- ``csv`` and ``jsonl``: rae's own, a label a row (query_id, query, product_id, label, rater, explanation).

A file reads as ``Entry`` records, each rating as it is written: which scale turns them into labels is decided once
the whole file is read (``rae.datasets.rating_scales.check_ratings``). A file whose shape is wrong is one
``DataFileError`` naming the line.
"""

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rae.datasets.located_json import LocatedJson
from rae.datasets.readers import DataFileError, read_rows

Format = Literal["trec", "quepid-csv", "quepid-judgements", "quepid-book", "srw", "srw-csv", "csv", "jsonl"]
FORMATS: tuple[str, ...] = Format.__args__
RATING_HEADER = ["query", "docid", "rating"]


@dataclass(frozen=True)
class Entry:
    """One rating of a judgment file, as written."""

    line: int | None
    query: str  # the query's text ('' where the format names queries by id)
    product_id: str
    rating: str  # a number as text, or (rae's own formats) a label's name
    rater: str = ""  # '' where the format names no rater
    note: str = ""
    query_id: str = ""  # where the format names it
    at: tuple[str | int, ...] = ()  # where it is in a JSON file (its line is found only if an error needs it)


@dataclass(frozen=True)
class JudgmentFile:
    """What a judgment file holds: its entries and, where the file says so, its scale."""

    path: Path
    entries: list[Entry]
    declared_scale: list[Any] | str | None = None  # a Quepid book's scale values, or its scorer's name
    json: LocatedJson | None = None

    def error(self, entry: Entry, message: str) -> DataFileError:
        """A one-line error at the entry's line."""
        line = entry.line if entry.line is not None or self.json is None else self.json.line_of(entry.at)
        return DataFileError(self.path, line, message)


def read_judgment_file(path: Path, fmt: Format) -> JudgmentFile:
    text = file_text(path)
    if fmt == "trec":
        return JudgmentFile(path, list(_trec(path, text)))
    if fmt in ("quepid-csv", "srw-csv"):
        return JudgmentFile(path, list(_rating_csv(path, text, header_optional=fmt == "srw-csv")))
    if fmt == "quepid-judgements":
        return JudgmentFile(path, list(_judgements_csv(path, text)))
    if fmt == "quepid-book":
        return _book(LocatedJson.parse(str(path), text), path)
    if fmt == "srw":
        located = LocatedJson.parse(str(path), text)
        return JudgmentFile(path, list(_srw(located)), json=located)
    return JudgmentFile(path, list(_rae(path, fmt)))


def file_text(path: Path) -> str:
    """The file's text: UTF-8 (a byte-order mark allowed), or the one file inside a zip (Quepid's book export)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(path, None, "no such file") from None
    except IsADirectoryError:
        raise DataFileError(path, None, "a directory, not a file") from None
    if zipfile.is_zipfile(io.BytesIO(data)):
        data = _zipped(path, data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFileError(path, line, f"not valid UTF-8 (byte {data[exc.start]:#04x}); save the file as UTF-8") from None


def _zipped(path: Path, data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(members) != 1:
            names = ", ".join(m.filename for m in members) or "nothing"
            raise DataFileError(path, None, f"a zip with one judgment file expected, found {names}")
        return archive.read(members[0])


def _trec(path: Path, text: str) -> Iterator[Entry]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DataFileError(path, number, f"expected 'qid 0 docid rel', found {len(parts)} fields")
        qid, _, docid, rel = parts
        yield Entry(number, "", docid, rel, query_id=qid)


def _csv_lines(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield reader.line_num, [cell.strip() for cell in cells]  # strip undoes Quepid's space before - = + @
    except csv.Error as exc:
        raise DataFileError(path, reader.line_num, f"malformed CSV ({exc})") from None


def _rating_csv(path: Path, text: str, header_optional: bool) -> Iterator[Entry]:
    lines = _csv_lines(path, text)
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


def _judgements_csv(path: Path, text: str) -> Iterator[Entry]:
    lines = _csv_lines(path, text)
    number, header = next(lines, (1, []))
    if [c.lower() for c in header[:2]] != ["query", "docid"] or len(header) < 3:
        raise DataFileError(path, number, f"expected the header query,docid,<judge>..., found {','.join(header) or 'nothing'}")
    judges = header[2:]
    for number, cells in lines:
        if len(cells) != len(header):
            raise DataFileError(path, number, f"expected {len(header)} fields, found {len(cells)}")
        for judge, rating in zip(judges, cells[2:], strict=True):
            if rating:
                yield Entry(number, cells[0], cells[1], rating, rater=judge)


def _book(book: LocatedJson, path: Path) -> JudgmentFile:
    body = book.expect(book.value, dict, (), "a Quepid book (an object with query_doc_pairs)")
    if "query_doc_pairs" not in body:
        raise book.error((), "not a Quepid book: no query_doc_pairs")
    pairs = book.expect(body["query_doc_pairs"], list, ("query_doc_pairs",), "a list of query-doc pairs")
    entries = []
    for i, pair in enumerate(pairs):
        where = ("query_doc_pairs", i)
        book.expect(pair, dict, where, "a query-doc pair (an object)")
        query, doc_id = str(pair.get("query_text") or "").strip(), str(pair.get("doc_id") or "").strip()
        judgements = book.expect(pair.get("judgements") or [], list, (*where, "judgements"), "a list of judgements")
        for j, judgement in enumerate(judgements):
            book.expect(judgement, dict, (*where, "judgements", j), "a judgement (an object)")
            if judgement.get("unrateable") or judgement.get("judge_later") or judgement.get("rating") is None:
                continue
            if not query or not doc_id:
                raise book.error(where, "a judged pair needs a query_text and a doc_id")
            entries.append(Entry(None, query, doc_id, str(judgement["rating"]), rater=str(judgement.get("user_email") or ""),
                                 note=str(judgement.get("explanation") or ""), at=(*where, "judgements", j)))
    return JudgmentFile(path, entries, _book_scale(book, body), book)


def _book_scale(book: LocatedJson, body: dict[str, Any]) -> list[Any] | str | None:
    """The book's scale: its ``scale`` (a list, or Quepid's older comma-separated text), else its scorer's."""
    scorer = body.get("scorer") if isinstance(body.get("scorer"), dict) else {}
    for where, scale in ((("scale",), body.get("scale")), (("scorer", "scale"), scorer.get("scale"))):
        if isinstance(scale, str) and scale.strip():
            return [v.strip() for v in scale.split(",")]
        if scale:
            return book.expect(scale, list, where, "a list of ratings")
    return str(scorer["name"]) if scorer.get("name") else None


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

"""Quepid's files, read as Quepid writes them (o19s/quepid: the jbuilder views and ``caseCSVSvc.js`` that export them).

- the book export (``query_doc_pairs`` each with ``judgements``, a judge named by ``user_email``; ``scale``),
- the case export (``case_name``, ``queries`` each with its ``ratings``, a rating's judge by ``user_email``),
- the snapshot export (``queries`` each with ``ratings`` as a map of doc id to a float; ``docs`` the lists shown),
- the book's judgements CSV (``query,docid,<judge>...``, a column a judge),
- the case's detailed CSV (``Team Name, Case Name, Case ID, Query Text, Doc ID, Doc Position, Title, Rating`` and
  then the fields the case shows; CRLF; a query with no results a short row of its own; an unrated document an
  empty rating). Columns are found by name, so an older export without ``Doc Position`` reads too.
- the LTR text export (``<rating> qid:<n> # <doc id> <query text>``), read as Quepid's own importer reads it
  (``RatingsController#rating_from_ltr_line``: the rating before the first space, the doc id after ``#``, the rest
  the query, quotes and all; ``qid`` is Quepid's query id, not read).

A book, case or snapshot names its scale where it can (``scale``, or its scorer's name); a case's and a book's
judges are raters, a snapshot's ratings are its case's (no judge is named). A book's ``document_fields`` and the
detailed CSV's columns after Quepid's own are the documents' fields as the case showed them (``JudgmentFile.products``).
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rae.datasets.judgment_entries import Entry, JudgmentFile, csv_lines
from rae.datasets.located_json import LocatedJson
from rae.datasets.readers import DataFileError

DETAILED_NEEDS = ("query text", "doc id", "rating")
DETAILED_OWN = ("team name", "case name", "case id", "query text", "doc id", "doc position", "rating")  # the rest: the case's fields


def read_book(book: LocatedJson, path: Path) -> JudgmentFile:
    body = book.expect(book.value, dict, (), "a Quepid book (an object with query_doc_pairs)")
    if "query_doc_pairs" not in body:
        raise book.error((), "not a Quepid book: no query_doc_pairs")
    pairs = book.expect(body["query_doc_pairs"], list, ("query_doc_pairs",), "a list of query-doc pairs")
    entries, products = [], {}
    for i, pair in enumerate(pairs):
        where = ("query_doc_pairs", i)
        book.expect(pair, dict, where, "a query-doc pair (an object)")
        query, doc_id = str(pair.get("query_text") or "").strip(), str(pair.get("doc_id") or "").strip()
        if doc_id and doc_id not in products:
            products[doc_id] = _document_fields(pair.get("document_fields"))
        judgements = book.expect(pair.get("judgements") or [], list, (*where, "judgements"), "a list of judgements")
        for j, judgement in enumerate(judgements):
            book.expect(judgement, dict, (*where, "judgements", j), "a judgement (an object)")
            if judgement.get("unrateable") or judgement.get("judge_later") or judgement.get("rating") is None:
                continue
            if not query or not doc_id:
                raise book.error(where, "a judged pair needs a query_text and a doc_id")
            entries.append(Entry(None, query, doc_id, str(judgement["rating"]), rater=str(judgement.get("user_email") or ""),
                                 note=str(judgement.get("explanation") or ""), at=(*where, "judgements", j)))
    return JudgmentFile(path, entries, declared_scale(book, body), book, products={d: f for d, f in products.items() if f})


def _document_fields(value: Any) -> dict[str, Any]:
    """A book pair's ``document_fields``: the fields Quepid showed, as a JSON text (or an object); anything else, none."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def read_case(case: LocatedJson, path: Path) -> JudgmentFile:
    """A case export: each query's ratings, each rating's judge (``user_email``, absent for an anonymous rating)."""
    body = _queries_body(case, "a Quepid case export (an object with case_name and queries)")
    entries = []
    for i, query_text, query in _queries(case, body):
        ratings = case.expect(query.get("ratings") or [], list, ("queries", i, "ratings"), "a list of {doc_id, rating}")
        for j, rating in enumerate(ratings):
            at = ("queries", i, "ratings", j)
            case.expect(rating, dict, at, "a rating (an object with doc_id and rating)")
            if rating.get("rating") is None:
                continue  # a document a judge has not rated yet
            doc_id = str(rating.get("doc_id") or "").strip()
            if not doc_id:
                raise case.error(at, "a rating needs a doc_id")
            entries.append(Entry(None, query_text, doc_id, str(rating["rating"]), rater=str(rating.get("user_email") or ""), at=at))
    return JudgmentFile(path, entries, declared_scale(case, body), case)


def read_snapshot(snapshot: LocatedJson, path: Path) -> JudgmentFile:
    """A snapshot export: each query's ratings as ``{doc id: rating}`` (the case's ratings when it was taken)."""
    body = _queries_body(snapshot, "a Quepid snapshot export (an object with queries)")
    entries = []
    for i, query_text, query in _queries(snapshot, body):
        ratings = snapshot.expect(query.get("ratings") or {}, dict, ("queries", i, "ratings"), "a map of doc id to rating")
        for doc_id, rating in ratings.items():
            if rating is not None:
                entries.append(Entry(None, query_text, str(doc_id).strip(), str(rating), at=("queries", i, "ratings", doc_id)))
    return JudgmentFile(path, entries, declared_scale(snapshot, body), snapshot)


def _queries_body(document: LocatedJson, what: str) -> dict[str, Any]:
    body = document.expect(document.value, dict, (), what)
    if not isinstance(body.get("queries"), list):
        raise document.error((), f"not {what.split(' (')[0]}: no list of queries")
    return body


def _queries(document: LocatedJson, body: dict[str, Any]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for i, query in enumerate(body["queries"]):
        document.expect(query, dict, ("queries", i), "a query (an object with query_text)")
        text = str(query.get("query_text") or "").strip()
        if not text:
            raise document.error(("queries", i), "a query needs its query_text")
        yield i, text, query


def declared_scale(document: LocatedJson, body: dict[str, Any]) -> list[Any] | str | None:
    """The scale a Quepid export declares: its ``scale`` (a list, or Quepid's older comma-separated text), its
    scorer's, else its scorer's name."""
    scorer = body.get("scorer") if isinstance(body.get("scorer"), dict) else {}
    for where, scale in ((("scale",), body.get("scale")), (("scorer", "scale"), scorer.get("scale"))):
        if isinstance(scale, str) and scale.strip():
            return [v.strip() for v in scale.split(",")]
        if scale:
            return document.expect(scale, list, where, "a list of ratings")
    return str(scorer["name"]) if scorer.get("name") else None


def read_judgements_csv(path: Path, text: str) -> Iterator[Entry]:
    lines = csv_lines(path, text)
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


def read_detailed_csv(path: Path, text: str) -> JudgmentFile:
    """The case's detailed export: the rated documents of each query, columns found by name; the columns after
    Quepid's own are the fields the case shows, kept as each document's."""
    lines = csv_lines(path, text)
    number, header = next(lines, (1, []))
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [name for name in DETAILED_NEEDS if name not in columns]
    if missing:
        raise DataFileError(path, number, f"not Quepid's detailed export: no {', '.join(missing)} column (found {','.join(header) or 'nothing'})")
    query_at, doc_at, rating_at = (columns[name] for name in DETAILED_NEEDS)
    shown = [(name, i) for name, i in columns.items() if name not in DETAILED_OWN]
    entries, products = [], {}
    for number, cells in lines:
        if len(cells) <= doc_at or not cells[doc_at]:
            continue  # a query that returned nothing: Quepid writes its first four columns only
        if len(cells) != len(header):
            raise DataFileError(path, number, f"expected {len(header)} fields as the header has, found {len(cells)}")
        cells = [cell.replace('""', '"') for cell in cells]  # stringifyField doubles quotes in unquoted fields too
        products.setdefault(cells[doc_at], {name: cells[i] for name, i in shown if cells[i]})
        if cells[rating_at]:
            entries.append(Entry(number, cells[query_at], cells[doc_at], cells[rating_at]))
    return JudgmentFile(path, entries, products=products)


def read_ltr(path: Path, text: str) -> Iterator[Entry]:
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        rating, _, rest = line.partition(" ")
        _, hash_mark, after = rest.partition("#")
        doc_id, _, query = after.strip().partition(" ")
        if not hash_mark or not doc_id or not query.strip():
            raise DataFileError(path, number, f"expected '<rating> qid:<n> # <doc id> <query>', found {line[:60]!r}")
        yield Entry(number, query.strip(), doc_id, rating)

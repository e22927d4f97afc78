"""Judgment lists in the formats search teams already have, read and written exactly as their tools do.

- ``trec``: TREC qrels, ``qid 0 docid rel`` (rae's query ids; scale ``0-2`` by default).
- ``quepid-csv``: Quepid's case export, ``query,docid,rating``: a query with no rated document is a row with the
  query alone (its other cells empty), a cell starting with ``- = + @`` gets a leading space (so spreadsheets do not
  read it as a formula), and the file has no trailing newline (scale ``0-3``).
- ``quepid-book``: Quepid's book JSON, ``query_doc_pairs`` each with ``judgements`` (rating, unrateable, judge_later,
  user_email, explanation); the book's ``scale`` says which ratings a judge may give, and each judge is a rater.
- ``srw``: the body of OpenSearch Search Relevance Workbench's judgment import, ``{"name", "description", "type":
  "IMPORT_JUDGMENT", "judgmentRatings": [{"query", "ratings": [{"docId", "rating"}]}]}``, ratings as numbers or
  numeric strings (scale ``unit``, 0 to 1).
- ``srw-csv``: SRW's CSV upload, ``query,docid,rating``.
- ``csv`` and ``jsonl``: rae's own, one label a row: query_id, query, product_id, label, rater, explanation.

Reading gives ``Rating`` records; a broken line, a rating off the scale, an unknown query id is one
``DataFileError`` naming the file and line. Formats that name queries by text are matched to query ids by
``query_id``; TREC names them by id, and ``query_text`` gives the text.
"""

import csv
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from rae.datasets.rating_scales import RatingError, RatingScale, scale_for_values
from rae.datasets.readers import DataFileError, read_rows
from rae.datasets.records import Rating
from rae.labels import Label, UnknownLabelError, to_label

Format = Literal["trec", "quepid-csv", "quepid-book", "srw", "srw-csv", "csv", "jsonl"]
FORMATS: tuple[str, ...] = Format.__args__
DEFAULT_SCALES = {"trec": "0-2", "quepid-csv": "0-3", "quepid-book": "0-3", "srw": "unit", "srw-csv": "unit"}
FORMULA_START = ("-", "=", "+", "@")
QueryIds = Callable[[str], str]  # query text -> rae's query id
QueryTexts = Callable[[str], str | None]  # rae's query id -> its text (None: unknown)


def read_judgments(path: Path, fmt: Format, scale: RatingScale, rater: str, query_id: QueryIds, query_text: QueryTexts) -> list[Rating]:
    if fmt == "trec":
        return _read_trec(path, scale, rater, query_text)
    if fmt in ("quepid-csv", "srw-csv"):
        return _read_rating_csv(path, scale, rater, query_id)
    if fmt == "quepid-book":
        return _read_book(path, rater, query_id)
    if fmt == "srw":
        return _read_srw(path, scale, rater, query_id)
    return _read_rae(path, rater, "jsonl" if fmt == "jsonl" else "csv")


def write_judgments(path: Path, fmt: Format, labels: list[Rating], scale: RatingScale, name: str) -> None:
    if fmt == "trec":
        lines = [f"{r.query_id} 0 {r.product_id} {_number(scale.rating(r.label))}" for r in _sorted(labels)]
        path.write_text("\n".join(lines) + ("\n" if lines else ""))
    elif fmt in ("quepid-csv", "srw-csv"):
        path.write_text(_rating_csv(labels, scale, quirks=fmt == "quepid-csv"))
    elif fmt == "quepid-book":
        path.write_text(json.dumps(_book(labels, scale, name), indent=2) + "\n")
    elif fmt == "srw":
        path.write_text(json.dumps(_srw(labels, scale, name), indent=2) + "\n")
    elif fmt == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["query_id", "query", "product_id", "label", "rater", "explanation"])
            writer.writerows([r.query_id, r.query, r.product_id, str(r.label), r.rater, r.note] for r in _sorted(labels))
    else:
        path.write_text("".join(json.dumps(_rae_row(r), ensure_ascii=False) + "\n" for r in _sorted(labels)))


def _read_trec(path: Path, scale: RatingScale, rater: str, query_text: QueryTexts) -> list[Rating]:
    labels = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DataFileError(path, number, f"expected 'qid 0 docid rel', found {len(parts)} fields")
        qid, _, docid, rel = parts
        text = query_text(qid)
        if text is None:
            raise DataFileError(path, number, f"query id {qid!r} is not one rae knows (TREC names queries by id: use rae's ids)")
        labels.append(Rating(qid, text, docid, _label(path, number, scale, rel), rater))
    return labels


def _read_rating_csv(path: Path, scale: RatingScale, rater: str, query_id: QueryIds) -> list[Rating]:
    labels = []
    for row in read_rows(path, required=("query",), fmt="csv"):
        query = str(row.get("query")).strip()  # strip also undoes Quepid's leading space before - = + @
        docid, rating = row.get("docid"), row.get("rating")
        if docid is None or str(docid).strip() == "":
            continue  # a query with no rated document
        if rating is None or str(rating).strip() == "":
            continue  # an unrated document (Quepid's snapshot export)
        labels.append(Rating(query_id(query), query, str(docid).strip(), _label(path, row.line, scale, rating), rater))
    return labels


def _read_book(path: Path, rater: str, query_id: QueryIds) -> list[Rating]:
    book = _json(path)
    if not isinstance(book, dict) or "query_doc_pairs" not in book:
        raise DataFileError(path, None, "not a Quepid book: no query_doc_pairs")
    values = book.get("scale") or []
    scale = scale_for_values([int(v) for v in (values.split(",") if isinstance(values, str) else values)])
    labels = []
    for number, pair in enumerate(book["query_doc_pairs"], start=1):
        query = str(pair.get("query_text", "")).strip()
        for judgement in pair.get("judgements") or []:
            if judgement.get("unrateable") or judgement.get("judge_later") or judgement.get("rating") is None:
                continue
            label = _label(path, number, scale, judgement["rating"])
            who = judgement.get("user_email") or rater
            labels.append(Rating(query_id(query), query, str(pair.get("doc_id")), label, who, note=judgement.get("explanation") or ""))
    return labels


def _read_srw(path: Path, scale: RatingScale, rater: str, query_id: QueryIds) -> list[Rating]:
    body = _json(path)
    if not isinstance(body, dict) or not isinstance(body.get("judgmentRatings"), list):
        raise DataFileError(path, None, "not an SRW judgment import: no judgmentRatings list")
    labels = []
    for number, entry in enumerate(body["judgmentRatings"], start=1):
        query = str(entry.get("query", "")).strip()
        for rating in entry.get("ratings") or []:
            docid = str(rating.get("docId", "")).strip()
            if not query or not docid:
                raise DataFileError(path, number, "a judgment rating needs a query and a non-empty docId")
            labels.append(Rating(query_id(query), query, docid, _label(path, number, scale, rating.get("rating")), rater))
    return labels


def _read_rae(path: Path, rater: str, fmt: str) -> list[Rating]:
    labels = []
    for row in read_rows(path, required=("query_id", "query", "product_id", "label"), fmt=fmt):
        try:
            label = to_label(str(row.get("label")))
        except UnknownLabelError as exc:
            raise DataFileError(path, row.line, str(exc)) from None
        labels.append(
            Rating(str(row.get("query_id")), str(row.get("query")), str(row.get("product_id")), label, str(row.get("rater") or rater),
                   note=str(row.get("explanation") or ""))
        )
    return labels


def _rating_csv(labels: list[Rating], scale: RatingScale, quirks: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["query", "docid", "rating"])
    for r in _sorted(labels):
        writer.writerow([_safe(r.query) if quirks else r.query, r.product_id, _number(scale.rating(r.label))])
    text = buffer.getvalue()
    return text.removesuffix("\n") if quirks else text  # Quepid writes no trailing newline


def _book(labels: list[Rating], scale: RatingScale, name: str) -> dict[str, Any]:
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _sorted(labels):
        pair = pairs.setdefault((r.query, r.product_id), {
            "query_text": r.query, "doc_id": r.product_id, "position": None, "document_fields": None, "information_need": None,
            "notes": None, "options": None, "judgements": [],
        })
        pair["judgements"].append({"rating": float(scale.rating(r.label)), "unrateable": False, "judge_later": False,
                                   "user_email": r.rater, "explanation": r.note or None})
    values = sorted({int(v) for v in scale.writes.values()})
    scale_values = list(range(0, max(values) + 1))
    return {"name": name, "show_rank": False, "support_implicit_judgements": False, "scale": scale_values,
            "scale_with_labels": {str(v): str(v) for v in scale_values}, "query_doc_pairs": list(pairs.values())}


def _srw(labels: list[Rating], scale: RatingScale, name: str) -> dict[str, Any]:
    by_query: dict[str, list[dict[str, str]]] = {}
    for r in _sorted(labels):
        by_query.setdefault(r.query, []).append({"docId": r.product_id, "rating": f"{scale.rating(r.label):.3f}"})
    return {"name": name, "description": "Judgments exported by rae", "type": "IMPORT_JUDGMENT",
            "judgmentRatings": [{"query": q, "ratings": ratings} for q, ratings in by_query.items()]}


def _label(path: Path, line: int | None, scale: RatingScale, rating: object) -> Label:
    try:
        return scale.label(rating)
    except RatingError as exc:
        raise DataFileError(path, line, str(exc)) from None


def _safe(text: str) -> str:
    return f" {text}" if text.startswith(FORMULA_START) else text


def _number(value: float) -> str:
    return f"{value:g}"


def _sorted(labels: Iterable[Rating]) -> list[Rating]:
    return sorted(labels, key=lambda r: (r.query_id, r.product_id, r.rater))


def _rae_row(r: Rating) -> dict[str, str]:
    return {"query_id": r.query_id, "query": r.query, "product_id": r.product_id, "label": str(r.label), "rater": r.rater,
            "explanation": r.note}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataFileError(path, None, "no such file") from None
    except UnicodeDecodeError:
        raise DataFileError(path, None, "not valid UTF-8") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise DataFileError(path, exc.lineno, f"broken JSON ({exc.msg})") from None

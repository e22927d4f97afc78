"""Judgment lists written as the peers' importers read them (each importer's checks are ported in the tests).

- ``trec``: ``qid 0 docid rel``, a line a pair.
- ``quepid-csv``: ``query,docid,rating`` with Quepid's own quirks: ``make_csv_safe``'s leading space before a query
  starting with ``- = + @``, and no trailing newline.
- ``quepid-judgements``: ``query,docid`` and a column a rater.
- ``quepid-book``: what Quepid's ``BookImporter`` takes: ``scale``, ``scale_with_labels`` and ``query_doc_pairs``
  whose judgements name their judge by ``user_email``. Quepid accepts a judge only as a user's email, so raters are
  written under the emails given, and a rater without one as an anonymous judgement (no ``user_email``).
- ``srw``: SRW's ``IMPORT_JUDGMENT`` body; SRW casts each ``docId`` and ``rating`` to a string, so both are strings.
- ``srw-csv``: ``query,docid,rating`` with a header row, a query quoted when it has a comma or a quote.
- ``csv`` and ``jsonl``: rae's own.

Formats with one rating a pair (trec, quepid-csv, srw, srw-csv) get one rater's labels: which, or how several
become one, is decided before writing (``rae.interop.judgment_lists``).
"""

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rae.datasets.judgment_reading import Format
from rae.datasets.rating_scales import RatingScale
from rae.datasets.records import Rating

FORMULA_START = ("-", "=", "+", "@")  # Quepid's make_csv_safe


def write_judgments(path: Path, fmt: Format, labels: list[Rating], scale: RatingScale, name: str, emails: Mapping[str, str]) -> None:
    labels = sorted(labels, key=lambda r: (r.query_id, r.product_id, r.rater))
    if fmt == "trec":
        path.write_text("".join(f"{r.query_id} 0 {r.product_id} {_number(scale.rating(r.label))}\n" for r in labels))
    elif fmt in ("quepid-csv", "srw-csv"):
        rows = [[_safe(r.query) if fmt == "quepid-csv" else r.query, r.product_id, _number(scale.rating(r.label))] for r in labels]
        text = _csv([["query", "docid", "rating"], *rows])
        path.write_text(text.removesuffix("\n") if fmt == "quepid-csv" else text)  # Quepid writes no trailing newline
    elif fmt == "quepid-judgements":
        path.write_text(_judgements_csv(labels, scale))
    elif fmt == "quepid-book":
        path.write_text(json.dumps(_book(labels, scale, name, emails), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "srw":
        path.write_text(json.dumps(_srw(labels, scale, name), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        rows = [[r.query_id, r.query, r.product_id, str(r.label), r.rater, r.note] for r in labels]
        path.write_text(_csv([["query_id", "query", "product_id", "label", "rater", "explanation"], *rows]))
    else:
        path.write_text("".join(json.dumps(_rae_row(r), ensure_ascii=False) + "\n" for r in labels))


def book_scale(scale: RatingScale) -> list[float]:
    """The ratings a Quepid judge may give on this scale: the discrete scale's, or every integer of a range."""
    if scale.reads is not None:
        return sorted({float(r) for r in scale.reads})
    if scale.high is not None and float(scale.high).is_integer() and scale.high - scale.low <= 10:
        return [float(v) for v in range(int(scale.low), int(scale.high) + 1)]
    return sorted(set(scale.writes.values()))


def _csv(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _judgements_csv(labels: list[Rating], scale: RatingScale) -> str:
    raters = sorted({r.rater for r in labels})
    pairs: dict[tuple[str, str], dict[str, str]] = {}
    for r in labels:
        pairs.setdefault((r.query, r.product_id), {})[r.rater] = _number(scale.rating(r.label))
    rows = [[_safe(query), docid, *[ratings.get(rater, "") for rater in raters]] for (query, docid), ratings in pairs.items()]
    return _csv([["query", "docid", *[_safe(rater) for rater in raters]], *rows])


def _book(labels: list[Rating], scale: RatingScale, name: str, emails: Mapping[str, str]) -> dict[str, Any]:
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in labels:
        pair = pairs.setdefault((r.query, r.product_id), {
            "query_text": r.query, "doc_id": r.product_id, "position": None, "document_fields": None, "information_need": None,
            "notes": None, "options": None, "judgements": [],
        })
        judgement = {"rating": float(scale.rating(r.label)), "unrateable": False, "judge_later": False}
        if r.rater in emails:
            judgement["user_email"] = emails[r.rater]
        judgement["explanation"] = r.note or None
        pair["judgements"].append(judgement)
    values = book_scale(scale)
    return {"name": name, "show_rank": False, "support_implicit_judgements": False, "scale": [_integral(v) for v in values],
            "scale_with_labels": {_number(v): _number(v) for v in values}, "query_doc_pairs": list(pairs.values())}


def _srw(labels: list[Rating], scale: RatingScale, name: str) -> dict[str, Any]:
    by_query: dict[str, list[dict[str, str]]] = {}
    for r in labels:
        by_query.setdefault(r.query, []).append({"docId": r.product_id, "rating": f"{scale.rating(r.label):.3f}"})
    return {"name": name, "description": "Judgments exported by rae", "type": "IMPORT_JUDGMENT",
            "judgmentRatings": [{"query": q, "ratings": ratings} for q, ratings in by_query.items()]}


def _safe(text: str) -> str:
    return f" {text}" if text.startswith(FORMULA_START) else text


def _number(value: float) -> str:
    return f"{value:g}"


def _integral(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _rae_row(r: Rating) -> dict[str, str]:
    return {"query_id": r.query_id, "query": r.query, "product_id": r.product_id, "label": str(r.label), "rater": r.rater,
            "explanation": r.note}

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
- ``quepid-ltr``: Quepid's LTR text, ``<rating> qid:<n> # <doc id> <query>`` a line, a query numbered by its first
  line (Quepid's importer reads the rating, the doc id and the query, and passes over ``qid``).
- ``rre``: Rated Ranking Evaluator's ratings with grades as keys and lists of doc ids as values, the one shape both
  RRE's ``Engine`` and Quepid's RRE importer (``Api::V1::Import::RatingsController``) read: ``index`` and ``id_field``
  (RRE requires both), ``queries`` at the top (RRE reads a missing ``topics`` level as the file itself), each with its
  ``$query`` placeholder. RRE parses a grade as an integer, so the scale must write integers.
- ``csv`` and ``jsonl``: rae's own.

- ``quepid-case``: what Quepid's ``CaseImporter`` takes: ``case_name``, ``scorer`` by name (one Quepid seeds, whose
  scale is the export's: nDCG@10 for 0-3, P@10 for 0-1), ``queries`` each with its ``ratings`` (a judge by
  ``user_email``), and the ``try`` whose search Quepid will run (``rae.interop.quepid_try``, from one of rae's engines).

rae reads Quepid's snapshot and detailed exports but does not write them as judgments: what Quepid imports as a
snapshot is a search's lists, not ratings (``rae lists export`` writes an evaluation's lists as that CSV,
``rae.retrieve.quepid_snapshot``), and the detailed CSV is Quepid's report, which it does not import.

Formats with one rating a pair (trec, quepid-csv, quepid-ltr, rre, srw, srw-csv) get one rater's labels: which, or how several
become one, is decided before writing (``rae.interop.judgment_lists``).
"""

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rae.datasets.judgment_entries import FORMATS, Format
from rae.datasets.rating_scales import RatingScale
from rae.datasets.records import Rating
from rae.errors import RaeError
from rae.labels import LABELS

FORMULA_START = ("-", "=", "+", "@")  # Quepid's make_csv_safe
READ_ONLY = ("quepid-snapshot", "quepid-detailed")
CASE_SCORERS = {"0-3": "nDCG@10", "0-1": "P@10"}  # Quepid's seeded scorers (db/seeds.rb), by the scale they rate on
WRITTEN: tuple[str, ...] = tuple(fmt for fmt in FORMATS if fmt not in READ_ONLY)


class WriteError(RaeError, ValueError):
    pass


def write_judgments(
    path: Path, fmt: Format, labels: list[Rating], scale: RatingScale, name: str, emails: Mapping[str, str], case_try: Mapping[str, Any] | None = None
) -> None:
    labels = sorted(labels, key=lambda r: (r.query_id, r.product_id, r.rater))
    if fmt in READ_ONLY:
        lists = "; a snapshot in Quepid is a search's lists: `rae lists export --case-id N` writes an evaluation's" if fmt == "quepid-snapshot" else ""
        raise WriteError(f"rae reads {fmt} but does not write it: write quepid-case, quepid-book, quepid-csv, quepid-ltr or rre{lists}")
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
    elif fmt == "quepid-case":
        path.write_text(json.dumps(_case(labels, scale, name, emails, case_try), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "srw":
        path.write_text(json.dumps(_srw(labels, scale, name), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "quepid-ltr":
        numbers = {query: n for n, query in enumerate(dict.fromkeys(r.query for r in labels), start=1)}
        path.write_text("".join(f"{_number(scale.rating(r.label))} qid:{numbers[r.query]} # {r.product_id} {r.query}\n" for r in labels))
    elif fmt == "rre":
        path.write_text(json.dumps(_rre(labels, scale, name), indent=2, ensure_ascii=False) + "\n")
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


def _case(labels: list[Rating], scale: RatingScale, name: str, emails: Mapping[str, str], case_try: Mapping[str, Any] | None) -> dict[str, Any]:
    if case_try is None:
        raise WriteError("quepid-case: Quepid imports a case with the search it runs; name the engine (--engine)")
    if scale.name not in CASE_SCORERS:
        raise WriteError(f"quepid-case: a case rates on its scorer's scale, and Quepid's scorers rate 0-3 (nDCG@10) or 0-1 (P@10): "
                         f"--scale 0-3 or --scale 0-1, not {scale.name}")
    queries: dict[str, list[dict[str, Any]]] = {}
    for r in labels:
        rating: dict[str, Any] = {"doc_id": r.product_id, "rating": _integral(scale.rating(r.label))}
        if r.rater in emails:
            rating["user_email"] = emails[r.rater]
        queries.setdefault(r.query, []).append(rating)
    return {"case_name": name, "public": False, "archived": False, "options": None, "scorer": {"name": CASE_SCORERS[scale.name]},
            "try": dict(case_try), "queries": [{"arranged_at": i, "query_text": q, "information_need": None, "notes": None, "options": None,
                                                "ratings": ratings} for i, (q, ratings) in enumerate(queries.items())]}


def _srw(labels: list[Rating], scale: RatingScale, name: str) -> dict[str, Any]:
    by_query: dict[str, list[dict[str, str]]] = {}
    for r in labels:
        by_query.setdefault(r.query, []).append({"docId": r.product_id, "rating": f"{scale.rating(r.label):.3f}"})
    return {"name": name, "description": "Judgments exported by rae", "type": "IMPORT_JUDGMENT",
            "judgmentRatings": [{"query": q, "ratings": ratings} for q, ratings in by_query.items()]}


def _rre(labels: list[Rating], scale: RatingScale, name: str) -> dict[str, Any]:
    if not all(float(scale.rating(label)).is_integer() for label in LABELS):
        raise WriteError(f"rre: RRE reads a grade as an integer and the scale {scale.name} writes {', '.join(_number(scale.rating(x)) for x in LABELS)}; "
                         "pick one with whole numbers (--scale 0-3)")
    by_query: dict[str, dict[str, list[str]]] = {}
    for r in labels:
        by_query.setdefault(r.query, {}).setdefault(str(int(scale.rating(r.label))), []).append(r.product_id)
    queries = [{"placeholders": {"$query": q}, "relevant_documents": dict(sorted(grades.items(), key=lambda g: -int(g[0])))}
               for q, grades in by_query.items()]
    return {"index": name, "id_field": "id", "queries": queries}


def _safe(text: str) -> str:
    return f" {text}" if text.startswith(FORMULA_START) else text


def _number(value: float) -> str:
    return f"{value:g}"


def _integral(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _rae_row(r: Rating) -> dict[str, str]:
    return {"query_id": r.query_id, "query": r.query, "product_id": r.product_id, "label": str(r.label), "rater": r.rater,
            "explanation": r.note}

"""Which tool wrote a judgment file, told from its content: a file's name says little (Quepid's exports are
``.json`` or ``.json.zip``, RRE's and SRW's are ``.json`` too, and a CSV may be any of five).

Each format has a mark no other has: a Quepid book's ``query_doc_pairs``, a case's ``case_name``, a snapshot's
``docs``, RRE's ``placeholders``, SRW's ``judgmentRatings`` or list of ``{query, ratings}``, the detailed CSV's
``Query Text`` and ``Doc ID`` columns, the LTR text's ``qid:``, a judgements CSV's judge columns, rae's own ``query_id, product_id, label``,
TREC's four fields. ``query,docid,rating`` is both Quepid's and SRW's CSV, read alike but on different default
scales, so that one is asked for rather than guessed.
"""

import json
import re
from pathlib import Path
from typing import Any

from rae.datasets.judgment_entries import Format, csv_lines
from rae.datasets.readers import DataFileError

RAE_COLUMNS = {"query_id", "product_id", "label"}
LTR_LINE = re.compile(r"^\s*\S+\s+qid:\S+\s*#\s*\S+\s+\S")


def format_of(path: Path, text: str) -> Format:
    """The format the file's content (``text``) shows; refused with the way out (``--format``) when it shows none, or two."""
    if text.lstrip().startswith(("{", "[")):
        fmt = _json_format(text)
    else:
        fmt = _text_format(path, text)
    if fmt is None:
        raise DataFileError(path, None, "cannot tell which tool wrote it; name the format with --format")
    return fmt


def _json_format(text: str) -> Format | None:
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError:
        first = text.lstrip().split("\n", 1)[0]
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            return None
        return "jsonl" if isinstance(record, dict) and set(record) >= RAE_COLUMNS else None
    if isinstance(value, list):
        return "srw" if value and isinstance(value[0], dict) and "ratings" in value[0] else None
    if not isinstance(value, dict):
        return None
    if "query_doc_pairs" in value:
        return "quepid-book"
    if "judgmentRatings" in value:
        return "srw"
    if "topics" in value or "query_groups" in value or _has_placeholders(value.get("queries")):
        return "rre"
    if "case_name" in value and "queries" in value:
        return "quepid-case"
    if "queries" in value and ("docs" in value or "scores" in value):
        return "quepid-snapshot"
    return None


def _has_placeholders(queries: Any) -> bool:
    return isinstance(queries, list) and bool(queries) and isinstance(queries[0], dict) and "placeholders" in queries[0]


def _text_format(path: Path, text: str) -> Format | None:
    try:
        _, header = next(csv_lines(path, text), (1, []))
    except DataFileError:
        header = []
    lowered = [cell.lower() for cell in header]
    if lowered == ["query", "docid", "rating"]:
        raise DataFileError(path, 1, "query,docid,rating is both Quepid's CSV (rated 0-3) and SRW's (0 to 1): say --format quepid-csv or srw-csv")
    if {"query text", "doc id", "rating"} <= set(lowered):
        return "quepid-detailed"
    if lowered[:2] == ["query", "docid"] and len(lowered) > 2:
        return "quepid-judgements"
    if set(lowered) >= RAE_COLUMNS:
        return "csv"
    first = text.lstrip().split("\n", 1)[0]
    if LTR_LINE.match(first):
        return "quepid-ltr"
    fields = first.split()
    if len(fields) == 4 and _is_number(fields[3]):
        return "trec"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

"""Query sets in and out: rae's own samples, OpenSearch SRW's query sets, plain text and CSV.

Read (``--queries-file``): a sample written by ``rae queries sample`` (JSON); an SRW query set, either as NDJSON
(one ``{"queryText", "referenceAnswer"}`` a line, the upload format) or as the JSON body of SRW's query set API
(``{"name", "sampling", "querySetQueries": [{"queryText"}]}``); a text file with one query a line; a CSV with a
``query`` column (and optionally ``query_id``). A query without an id gets rae's stable id for its text, the one a
log query gets, so the same query has the same id from every source; its text stays as the set writes it (case
included: the judge reads what users typed) and SRW's ``referenceAnswer`` is kept.

Written: SRW's NDJSON (``rae queries sample --format srw``), which SRW's query set upload takes as it is.
"""

import json
import unicodedata
from pathlib import Path

from rae.datasets.readers import DataFileError, read_rows
from rae.datasets.records import Query
from rae.datasets.searchlog import QuerySample, normalize_query, query_id_for


def read_query_set(path: Path) -> list[Query]:
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, None, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return _queries([(line, "") for line in lines if line.strip()])
    if suffix == ".csv":
        rows = list(read_rows(path, required=("query",)))
        return [Query(str(r.get("query_id") or query_id_for(str(r.get("query")))), _as_written(str(r.get("query")))) for r in rows]
    if suffix in (".ndjson", ".jsonl"):
        return _queries([(str(r.get("queryText")), str(r.get("referenceAnswer") or "")) for r in read_rows(path, required=("queryText",))])
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataFileError(path, exc.lineno, f"broken JSON ({exc.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("querySetQueries"), list):
        entries = [q for q in data["querySetQueries"] if isinstance(q, dict) and str(q.get("queryText", "")).strip()]
        return _queries([(str(q["queryText"]), str(q.get("referenceAnswer") or "")) for q in entries])
    return QuerySample.load(path).queries


def write_srw_query_set(path: Path, queries: list[Query]) -> None:
    """One ``{"queryText", "referenceAnswer"}`` a line (a query sampled from a log has no reference answer: empty)."""
    lines = [json.dumps({"queryText": q.text, "referenceAnswer": q.reference_answer}, ensure_ascii=False) for q in queries]
    Path(path).write_text("\n".join(lines) + "\n")


def _queries(entries: list[tuple[str, str]]) -> list[Query]:
    """Queries as written (whitespace tidied), one per normalised text: the first one's."""
    unique: dict[str, Query] = {}
    for text, answer in entries:
        if text.strip() and normalize_query(text) not in unique:
            unique[normalize_query(text)] = Query(query_id_for(text), _as_written(text), reference_answer=answer)
    return list(unique.values())


def _as_written(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())

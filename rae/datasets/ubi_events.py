"""A User Behavior Insights log's queries and events, as OpenSearch writes them (opensearch-project/user-behavior-insights).

A log may hold both UBI indexes' records in one file or in two (``ubi_queries``, ``ubi_events``), as NDJSON
whatever the file is named, gzipped or not, with the bulk API's action lines (``{"index": {...}}``) between records
when it is an export meant for ``_bulk``. A query record has ``query_id`` and ``user_query``; an event has
``action_name`` and, for a result the user saw or clicked, ``event_attributes.object.object_id`` and
``event_attributes.position.ordinal``. Timestamps are ISO strings or epoch milliseconds; both are read. An event
without the query's text takes it from its query's record.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rae.datasets.readers import DataFileError, Row, read_rows


@dataclass(frozen=True)
class ResultEvent:
    """An event on one result of one search: an impression or a click, at a position (0 is the top)."""

    line: int
    query: str
    action: str
    object_id: str
    position: int


@dataclass(frozen=True)
class UbiLog:
    """The result events of a log, and the time it spans."""

    events: list[ResultEvent]
    first: datetime | None
    last: datetime | None

    def span(self) -> str:
        if self.first is None or self.last is None:
            return "no timestamps"
        return f"{self.first:%Y-%m-%d} to {self.last:%Y-%m-%d}"


def read_ubi_log(paths: Iterable[Path], fmt: str | None = None) -> UbiLog:
    rows = [(path, row) for path in paths for row in read_rows(path, fmt=fmt) if "index" not in row.values or len(row.values) > 1]
    texts = {str(row.get("query_id")): str(row.get("user_query")) for _, row in rows if row.get("user_query") and "action_name" not in row.values}
    events, times = [], []
    for path, row in rows:
        if (stamp := _timestamp(path, row)) is not None:
            times.append(stamp)
        if "action_name" in row.values and (event := _result_event(path, row, texts)) is not None:
            events.append(event)  # an event on no one result (a search, a filter, a page view) is not one
    return UbiLog(events, min(times, default=None), max(times, default=None))


def _result_event(path: Path, row: Row, texts: dict[str, str]) -> ResultEvent | None:
    attributes = row.get("event_attributes") or {}
    target = _field(attributes, "object", "object_id")
    ordinal = _field(attributes, "position", "ordinal")
    if target is None or ordinal is None:
        return None
    query = row.get("user_query") or texts.get(str(row.get("query_id")))
    if not query:
        return None
    try:
        position = int(ordinal)
    except (TypeError, ValueError):
        raise DataFileError(path, row.line, f"event_attributes.position.ordinal {ordinal!r} is not a whole number") from None
    return ResultEvent(row.line, str(query), str(row.get("action_name")).lower(), str(target), position)


def _field(attributes: Any, outer: str, inner: str) -> Any:
    value = attributes.get(outer) if isinstance(attributes, dict) else None
    return value.get(inner) if isinstance(value, dict) else None


def _timestamp(path: Path, row: Row) -> datetime | None:
    value = row.get("timestamp")
    if value is None:
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000, UTC)
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise DataFileError(path, row.line, f"timestamp {value!r} is neither an ISO time nor epoch milliseconds") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

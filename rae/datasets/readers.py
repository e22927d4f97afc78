"""Row readers for the file formats a team's data comes in: CSV, JSON Lines and Parquet (CSV and JSONL may be gzipped).

Every problem with a file is reported as one ``DataFileError`` naming the file and the line (or row), so that a
user can open the file at that spot; nothing is silently skipped.
"""

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rae.errors import RaeError

TEXT_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
LogFormat = Literal["csv", "tsv", "jsonl", "parquet"]  # what a user may insist a file is


class DataFileError(RaeError, ValueError):
    """A data file that rae cannot read as asked; the message names the file and, where known, the line."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line = str(path), line
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a data file with the line (CSV/JSONL) or row number (Parquet) it came from."""

    line: int
    values: dict[str, Any]

    def get(self, column: str, default: Any = None) -> Any:
        value = self.values.get(column, default)
        return default if _is_missing(value) else value


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def file_format(path: Path) -> str:
    """The format the file's name says, else the one its first line shows (OpenSearch's UBI exports are NDJSON in
    files named ``.json``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last == ".parquet":
        return "parquet"
    if last in TEXT_FORMATS:
        return TEXT_FORMATS[last]
    if _first_line_is_a_record(path):
        return "jsonl"
    raise DataFileError(path, None, "unknown file type; use .csv, .tsv, .jsonl, .ndjson or .parquet (optionally .gz), or --format")


def _first_line_is_a_record(path: Path) -> bool:
    """Whether the file starts with one JSON object alone on its line: JSON Lines, whatever the file's name."""
    if not path.exists():
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as lines:
            first = next((line for line in lines if line.strip()), "")
    except (OSError, EOFError):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def read_rows(path: Path | str, required: tuple[str, ...] = (), fmt: str | None = None) -> Iterator[Row]:
    """The rows of a data file; ``required`` columns must be present (and non-empty) in every row. ``fmt`` (csv,
    tsv, jsonl, parquet) overrides what the file's name says."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(path, None, "no such file")
    fmt = fmt or file_format(path)
    rows = _parquet_rows(path) if fmt == "parquet" else _text_rows(path, fmt)
    seen_any = False
    for row in rows:
        seen_any = True
        for column in required:
            if column not in row.values:
                have = ", ".join(sorted(row.values)) or "none"
                raise DataFileError(path, row.line, f"missing column {column!r} (columns here: {have})")
            if _is_missing(row.values[column]) or str(row.values[column]).strip() == "":
                raise DataFileError(path, row.line, f"empty value in required column {column!r}")
        yield row
    if not seen_any:
        raise DataFileError(path, None, "the file holds no records")


def _decoded_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataFileError(path, None, f"not a readable gzip file ({exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFileError(path, line, f"not valid UTF-8 (byte {data[exc.start]:#04x}); save the file as UTF-8") from None


def _text_rows(path: Path, fmt: str) -> Iterator[Row]:
    text = _decoded_text(path)
    if fmt == "jsonl":
        yield from _jsonl_rows(path, text)
    else:
        yield from _csv_rows(path, text, delimiter="\t" if fmt == "tsv" else ",")


def _jsonl_rows(path: Path, text: str) -> Iterator[Row]:
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may sit inside a string
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(path, number, f"broken JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise DataFileError(path, number, f"expected a JSON object, found {type(value).__name__}")
        yield Row(number, value)


def _csv_rows(path: Path, text: str, delimiter: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = reader.fieldnames
        if header is None:
            return
        if len(set(header)) != len(header):
            raise DataFileError(path, 1, f"repeated column name in header: {header}")
        for values in reader:
            if None in values:
                raise DataFileError(path, reader.line_num, f"more fields than the header's {len(header)}")
            if any(v is None for v in values.values()):
                raise DataFileError(path, reader.line_num, f"fewer fields than the header's {len(header)}")
            yield Row(reader.line_num, dict(values))
    except csv.Error as exc:
        raise DataFileError(path, reader.line_num, f"malformed CSV ({exc})") from None


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise DataFileError(path, None, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    for number, values in enumerate(table.to_pylist(), start=1):
        yield Row(number, values)

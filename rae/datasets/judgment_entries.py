"""What every judgment file reads as: entries, each rating as written, with where it is in the file.

A file's text is read here once for every format: UTF-8 (a byte-order mark allowed), or the one data file inside a
zip, as Quepid hands its exports out (macOS's ``__MACOSX/`` resource entries beside it are not data).
"""

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rae.datasets.located_json import LocatedJson
from rae.datasets.readers import DataFileError

Format = Literal[
    "trec", "quepid-csv", "quepid-judgements", "quepid-book", "quepid-case", "quepid-snapshot", "quepid-detailed", "quepid-ltr", "rre", "srw",
    "srw-csv", "csv", "jsonl",
]
FORMATS: tuple[str, ...] = Format.__args__


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
    fmt: str = ""  # the format it was read as
    detected: bool = False  # that format was told from its content, not asked for
    products: dict[str, dict[str, Any]] = field(default_factory=dict)  # doc id -> its fields, where the file shows them

    def line_of(self, entry: Entry) -> int | None:
        """The entry's line (in a JSON file, found only when asked)."""
        return entry.line if entry.line is not None or self.json is None else self.json.line_of(entry.at)

    def error(self, entry: Entry, message: str) -> DataFileError:
        """A one-line error at the entry's line."""
        return DataFileError(self.path, self.line_of(entry), message)


def file_text(path: Path) -> str:
    """The file's text: UTF-8 (a byte-order mark allowed), or the one data file inside a zip."""
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
        members = [m for m in archive.infolist() if not m.is_dir() and _is_data(m.filename)]
        if len(members) != 1:
            names = ", ".join(m.filename for m in members) or "nothing"
            raise DataFileError(path, None, f"a zip with one judgment file expected, found {names}")
        return archive.read(members[0])


def _is_data(name: str) -> bool:
    """Not macOS's resource forks (``__MACOSX/``, ``._name``) or a hidden file such as ``.DS_Store``."""
    return not name.startswith("__MACOSX/") and not Path(name).name.startswith(".")


def csv_lines(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank row with its line, cells stripped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield reader.line_num, [cell.strip() for cell in cells]  # strip undoes Quepid's space before - = + @
    except csv.Error as exc:
        raise DataFileError(path, reader.line_num, f"malformed CSV ({exc})") from None



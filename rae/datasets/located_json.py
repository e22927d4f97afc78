"""JSON documents whose entries know their line, so that a judgment file's error points at the line to open.

``json`` gives a line only for a syntax error. A file that parses but has the wrong shape (an object where a list
belongs, a string where an entry belongs) is reported at the entry that has it: ``line_of`` finds where the value at
a path (keys and list indexes) starts, by walking the text with the standard decoder's ``raw_decode``. It runs only
when there is an error to report, so reading a good file costs one ``json.loads``.
"""

import json
from dataclasses import dataclass
from typing import Any

from rae.datasets.readers import DataFileError

WHITESPACE = " \t\n\r"
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class LocatedJson:
    """A parsed JSON document and its text."""

    source: str  # the file, for error messages
    text: str
    value: Any

    @classmethod
    def parse(cls, source: str, text: str) -> "LocatedJson":
        try:
            return cls(source, text, json.loads(text))
        except json.JSONDecodeError as exc:
            raise DataFileError(source, exc.lineno, f"broken JSON ({exc.msg} at column {exc.colno})") from None

    def line_of(self, path: Path) -> int | None:
        """The line where the value at ``path`` starts (None if the path is not in the document)."""
        offset = _find(self.text, _skip(self.text, 0), path)
        return None if offset is None else self.text.count("\n", 0, offset) + 1

    def error(self, path: Path, message: str) -> DataFileError:
        """A one-line error at the value of ``path``, naming where it is in the document."""
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return DataFileError(self.source, self.line_of(path), f"{where}: {message}" if where else message)

    def expect(self, value: Any, kind: type, path: Path, what: str) -> Any:
        """``value`` if it is a ``kind``; else the error, naming what was expected and what is there."""
        if not isinstance(value, kind):
            raise self.error(path, f"expected {what}, found {_json_type(value)}")
        return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(type(value), "a number")


def _skip(text: str, offset: int) -> int:
    while offset < len(text) and text[offset] in WHITESPACE:
        offset += 1
    return offset


def _find(text: str, offset: int, path: Path) -> int | None:
    """The offset of the value at ``path`` within the value that starts at ``offset``."""
    if not path:
        return offset
    step, rest = path[0], path[1:]
    for key, start in _members(text, offset):
        if key == step:
            return _find(text, start, rest)
    return None


def _members(text: str, offset: int):
    """(key or index, offset of its value) of the object or list that starts at ``offset``."""
    decoder = json.JSONDecoder()
    opening = text[offset : offset + 1]
    if opening not in ("{", "["):
        return
    offset, index = _skip(text, offset + 1), 0
    while offset < len(text) and text[offset] not in "}]":
        key: str | int = index
        if opening == "{":
            key, offset = decoder.raw_decode(text, offset)
            offset = _skip(text, _skip(text, offset) + 1)  # past the colon
        yield key, offset
        _, offset = decoder.raw_decode(text, offset)
        offset = _skip(text, offset)
        if offset < len(text) and text[offset] == ",":
            offset = _skip(text, offset + 1)
        index += 1

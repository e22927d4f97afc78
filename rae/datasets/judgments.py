"""Load a human-labelled set (query, product, label) from a team's own file, with configurable column names."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rae.datasets.readers import DataFileError, read_rows
from rae.datasets.records import Pair, Rating
from rae.labels import ESCI_MAPPING, Label, UnknownLabelError, to_label


@dataclass(frozen=True)
class JudgmentColumns:
    """Which column of the file holds each field. The defaults are the bundled ESCI file's."""

    query_id: str = "query_id"
    query: str = "query"
    product_id: str = "product_id"
    label: str = "esci_label"


def load_judgments(
    path: Path | str,
    columns: JudgmentColumns = JudgmentColumns(),
    mapping: Mapping[str, Label] = ESCI_MAPPING,
) -> list[Rating]:
    """Every human judgment in the file. A pair judged twice is an error: rae cannot tell which label to trust."""
    required = (columns.query_id, columns.query, columns.product_id, columns.label)
    judgments: list[Rating] = []
    first_seen: dict[tuple[str, str], int] = {}
    for row in read_rows(path, required=required):
        raw_label = str(row.get(columns.label)).strip()
        try:
            label = to_label(raw_label, mapping)
        except UnknownLabelError as exc:
            raise DataFileError(path, row.line, str(exc)) from None
        key = (str(row.get(columns.query_id)).strip(), str(row.get(columns.product_id)).strip())
        if key in first_seen:
            raise DataFileError(
                path, row.line, f"pair (query {key[0]!r}, product {key[1]!r}) is already labelled on line {first_seen[key]}"
            )
        first_seen[key] = row.line
        judgments.append(
            Rating(
                query_id=key[0],
                query=str(row.get(columns.query)).strip(),
                product_id=key[1],
                label=label,
                original_label=raw_label,
            )
        )
    return judgments


def load_pairs(path: Path | str, columns: JudgmentColumns = JudgmentColumns()) -> list[Pair]:
    """Query-product pairs to judge, from a file with query id, query and product id columns (no label needed)."""
    rows = read_rows(path, required=(columns.query_id, columns.query, columns.product_id))
    return [Pair(str(r.get(columns.query_id)).strip(), str(r.get(columns.query)).strip(), str(r.get(columns.product_id)).strip()) for r in rows]

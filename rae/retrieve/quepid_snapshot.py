"""Result lists as Quepid imports a snapshot: its CSV ``Snapshot Name,Snapshot Time,Case ID,Query Text,Doc ID,Doc
Position``, a snapshot an engine's lists (o19s/quepid: ``import_snapshot_controller.js`` reads the file,
``SnapshotImporter`` stores it in an existing case, so a team compares rae's engines to its own in Quepid).

Quepid's reader splits each line on every comma and skips, without a word, a line whose count of values is not the
header's: a query or doc id that holds a comma cannot travel this way (a quoted field would split too). Those are
left out here and named, never written to vanish. Values are trimmed there, so they are written trimmed.
"""

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HEADER = ("Snapshot Name", "Snapshot Time", "Case ID", "Query Text", "Doc ID", "Doc Position")


@dataclass
class SnapshotFile:
    """What was written: the documents per snapshot and the queries Quepid's reader could not take."""

    rows: dict[str, int] = field(default_factory=dict)  # snapshot name -> documents written
    left_out: list[str] = field(default_factory=list)  # query texts (or doc ids) holding a comma or a line break


def write_quepid_snapshot(path: Path, snapshots: dict[str, dict[str, list[str]]], case_id: int, taken: datetime) -> SnapshotFile:
    """``snapshots``: a snapshot's name -> query text -> its ranked doc ids. The time is written as ISO 8601, which
    Rails reads into ``created_at`` without guessing a day-month order."""
    written = SnapshotFile()
    lines = [",".join(HEADER)]
    for name, lists in snapshots.items():
        written.rows[name] = 0
        for query, docs in lists.items():
            values = [name, query, *docs]
            if any(_breaks(v) for v in values):
                if query not in written.left_out:
                    written.left_out.append(query)
                continue
            for position, doc in enumerate(docs, start=1):
                lines.append(",".join([name.strip(), taken.isoformat(timespec="seconds"), str(case_id), query.strip(), doc.strip(), str(position)]))
                written.rows[name] += 1
    path.write_text("\n".join(lines) + "\n")
    return written


def _breaks(value: str) -> bool:
    return any(c in value for c in ",\n\r") or value.strip() == ""

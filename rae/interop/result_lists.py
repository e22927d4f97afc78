"""``rae lists export``: an evaluation's result lists in another tool's format, so a team sees rae's engines where it
already looks (a Quepid snapshot in its case, beside its own search's)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rae.errors import RaeError
from rae.evaluate.stored_run import load_evaluation
from rae.retrieve.quepid_snapshot import write_quepid_snapshot
from rae.workspace import Workspace


class ListsError(RaeError):
    """An export that cannot be written as asked (an engine the run does not have)."""


@dataclass(frozen=True)
class ListsWritten:
    path: Path
    run_id: str
    documents: dict[str, int]  # snapshot (engine) -> documents written
    left_out: list[str]

    def line(self) -> str:
        snapshots = ", ".join(f"{name} ({n} documents)" for name, n in self.documents.items())
        lines = [f"wrote {len(self.documents)} snapshots of evaluation {self.run_id} to {self.path}: {snapshots}"]
        if self.left_out:
            shown = ", ".join(repr(q) for q in self.left_out[:5]) + (f" and {len(self.left_out) - 5} more" if len(self.left_out) > 5 else "")
            lines.append(f"left out {len(self.left_out)} queries whose text or doc ids hold a comma, which Quepid's snapshot "
                         f"import splits on and would drop without a word: {shown}")
        return "\n".join(lines)


def export_snapshot(workspace: Workspace, path: Path, run_id: str | None, case_id: int, engines: list[str] | None = None) -> ListsWritten:
    """Each engine's lists of an evaluation (the latest by default) as a Quepid snapshot named after the engine."""
    stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None if run_id in (None, "latest") else run_id)
    unknown = [e for e in engines or [] if e not in stored.rankings]
    if unknown:
        raise ListsError(f"evaluation {stored.run_id} has no engine {', '.join(unknown)} (it has {', '.join(stored.rankings)})")
    texts = {q.query_id: q.text for q in stored.queries}
    chosen = engines or list(stored.rankings)
    snapshots = {e: {texts[q]: products for q, products in stored.rankings[e].items() if products} for e in chosen}
    written = write_quepid_snapshot(path, snapshots, case_id, datetime.now(UTC))
    return ListsWritten(path, stored.run_id, written.rows, written.left_out)

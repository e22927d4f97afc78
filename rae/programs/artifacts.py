"""Compiled programs as versioned artifacts: DSPy's state JSON plus a manifest, under ``rae/programs/compiled/``.

An artifact is a whole program configuration: the predictors' fitted instructions and demos (``program.json``, DSPy's
readable state, never a pickle), and in ``manifest.json`` the settings it was fitted with (guidelines mode, chain of
thought, product text), the model, the data and split it saw, the optimizer and its budget, its scores with CIs,
the git commit and the date. Loading one rebuilds exactly that program, so the store's program hash, and with it every
key, follows the artifact: a new artifact never reuses an old program's judgments.
"""

import json
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dspy

from rae.config import ProductTextSpec
from rae.errors import RaeError
from rae.programs.annotator import Annotator
from rae.programs.refine import Refinement

COMPILED_DIR = Path(__file__).parent / "compiled"
UNCOMPILED = "uncompiled"


class ArtifactError(RaeError):
    pass


@dataclass
class Manifest:
    name: str
    version: int
    model: str
    model_identity: str
    guidelines: str
    chain_of_thought: bool
    product_text: dict[str, Any]
    optimizer: dict[str, Any]
    dataset: dict[str, Any]
    scores: dict[str, Any] = field(default_factory=dict)
    program_hashes: dict[str, str] = field(default_factory=dict)
    judge_mode: str = "text"
    dspy_version: str = dspy.__version__
    git_commit: str = ""
    created: str = ""

    @property
    def artifact_id(self) -> str:
        return f"{self.name}-v{self.version}"

    def product_text_spec(self) -> ProductTextSpec:
        return ProductTextSpec.model_validate(self.product_text)


def build_annotator(manifest: Manifest, refinement: Refinement = Refinement(), samples: int = 1) -> Annotator:
    return Annotator(manifest.guidelines, manifest.chain_of_thought, manifest.judge_mode, refinement, samples)


def save_artifact(annotator: Annotator, manifest: Manifest, root: Path = COMPILED_DIR, read_from: tuple[Path, ...] = ()) -> Path:
    """Write ``<root>/<name>-v<version>/``; the version is one more than the newest of that name in ``root`` and in
    the directories programs are also read from (so that a project's artifact never shadows one rae ships)."""
    manifest.version = max((m.version for m in list_artifacts((root, *read_from)) if m.name == manifest.name), default=0) + 1
    manifest.created = manifest.created or datetime.now(UTC).isoformat(timespec="seconds")
    manifest.git_commit = manifest.git_commit or _git_commit()
    directory = root / manifest.artifact_id
    directory.mkdir(parents=True, exist_ok=False)
    annotator.save(str(directory / "program.json"))
    (directory / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return directory


def list_artifacts(root: Path | tuple[Path, ...] = COMPILED_DIR) -> list[Manifest]:
    """Every artifact in the directory (or directories: a project's own and those rae ships), oldest first."""
    manifests = []
    for path in (p for r in _roots(root) if r.exists() for p in sorted(r.glob("*/manifest.json"))):
        try:
            manifests.append(Manifest(**json.loads(path.read_text())))
        except (ValueError, TypeError) as exc:
            raise ArtifactError(f"{path}: not a rae manifest ({exc})") from None
    return sorted(manifests, key=lambda m: (m.created, m.version))


def load_artifact(
    artifact_id: str, root: Path | tuple[Path, ...] = COMPILED_DIR, refinement: Refinement = Refinement(), samples: int = 1
) -> tuple[Annotator, Manifest]:
    """The artifact, from the first directory that has it (a project's own before the ones rae ships)."""
    known = {m.artifact_id: m for m in list_artifacts(root)}
    if artifact_id not in known:
        names = ", ".join(known) or "none yet (run `rae optimize`)"
        raise ArtifactError(f"no compiled program {artifact_id!r}; known: {names}")
    manifest = known[artifact_id]
    annotator = build_annotator(manifest, refinement, samples)
    annotator.load(str(artifact_home(artifact_id, root) / artifact_id / "program.json"))
    return annotator, manifest


def artifact_home(artifact_id: str, root: Path | tuple[Path, ...]) -> Path:
    """The first directory that has the artifact (a project's own before the ones rae ships)."""
    return next(r for r in _roots(root) if (r / artifact_id / "manifest.json").exists())


def _roots(root: Path | tuple[Path, ...]) -> tuple[Path, ...]:
    return (root,) if isinstance(root, Path) else root


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""

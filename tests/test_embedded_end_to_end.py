"""The real embedded model (llama.cpp + SmolLM2-135M), end to end through the command line: annotate, store, agreement."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from rae.store.schema import JudgmentRow
from rae.store.store import Store

pytestmark = pytest.mark.embedded
SLICE = ["--split", "dev", "--queries", "1", "--per-query", "3"]


def rae(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rae", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_annotate_store_and_agreement_with_the_embedded_model(tmp_path: Path):
    first = rae("annotate", *SLICE, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 pairs: 3 judged, 0 failed to parse; 0 from the store" in first.stdout
    assert "5 LM calls made (3 judgments, 2 for requirements and guidelines)" in first.stdout

    second = rae("annotate", *SLICE, cwd=tmp_path)
    assert second.returncode == 0 and "0 LM calls made (everything was in the store)" in second.stdout

    rows = Store(f"sqlite:///{tmp_path / '.rae' / 'rae.db'}").session().scalars(select(JudgmentRow)).all()
    assert len(rows) == 3
    for row in rows:
        assert row.label in {"irrelevant", "acceptable_substitute", "highly_relevant"}
        assert json.loads(row.raw_output)["label"] == row.label  # grammar-constrained: the raw text is the JSON
        assert row.input_tokens > 100 and row.output_tokens > 0 and row.cost_usd == 0.0
        assert '"weights"' in row.model_id  # the GGUF's digest is part of the model identity
        assert row.confidence_method == "probabilities" and set(row.probabilities) == {"irrelevant", "acceptable_substitute", "highly_relevant"}
        assert abs(sum(row.probabilities.values()) - 1) < 1e-4 and row.confidence == row.probabilities[row.label]

    report = rae("agreement", *SLICE, "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["n_pairs"] == 3 and data["n_failed"] == 0 and 0 <= data["accuracy"]["value"] <= 1

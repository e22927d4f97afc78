"""The real embedded model (llama.cpp + SmolLM2-135M), end to end through the command line: annotate, store, agreement."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from rae.store.schema import JudgmentRow
from rae.store.store import Store
from rae.studies.output_audit import audit_outputs

pytestmark = pytest.mark.embedded
SLICE = ["--split", "dev", "--queries", "2", "--per-query", "3"]


def rae(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rae", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_annotate_store_and_agreement_with_the_embedded_model(tmp_path: Path):
    first = rae("annotate", *SLICE, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "6 pairs: 6 judged, 0 failed to parse; 0 from the store" in first.stdout
    calls = re.search(r"(\d+) LM calls made \((\d+) for judgments, (\d+) for requirements and guidelines\)", first.stdout)
    assert calls and int(calls[2]) >= 6 and int(calls[3]) >= 2  # refining attempts come on top of one call each

    second = rae("annotate", *SLICE, cwd=tmp_path)
    assert second.returncode == 0 and "0 LM calls made (everything was in the store)" in second.stdout

    store = Store(f"sqlite:///{tmp_path / '.rae' / 'rae.db'}")
    audit = audit_outputs(store)
    assert audit.stages["reasoning"].rows == 6 and audit.stages["guidelines"].rows + audit.stages["requirements"].rows >= 2
    assert audit.degenerate_stored_as_content == 0  # nothing the checks call a placeholder is stored as content
    rows = store.session().scalars(select(JudgmentRow)).all()
    assert len(rows) == 6
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
    assert data["n_pairs"] == 6 and data["n_failed"] == 0 and 0 <= data["accuracy"]["value"] <= 1

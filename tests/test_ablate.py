import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.programs.product_text import product_text
from tests.scripted import default_answer, field_text


def knows_more_with_query_guidelines():
    """Right (the human label) with query-specific guidelines, always highly_relevant with the generic rubric."""
    data = esci_us()
    human = {(j.query, product_text(data.catalog[j.product_id])): str(j.label) for j in data.judgments}

    def script(stage, request):
        if stage != "judgment":
            return default_answer(stage, request)
        generic = "meets every requirement the query states" in field_text(request, "guidelines")
        label = "highly_relevant" if generic else human[(field_text(request, "query"), field_text(request, "product"))]
        reasoning = "the listing was read against the guidelines"
        return {"reasoning": reasoning, "label": label} if "reasoning" in request.config.response_format["schema"]["properties"] else {"label": label}

    return script


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\n')
    return tmp_path


def test_ablate_prints_each_variant_with_kappa_ci_and_paired_tests(scripted_workspace, project):
    scripted_workspace.script = knows_more_with_query_guidelines()
    args = ["ablate", "--split", "test", "--queries", "5", "--per-query", "8", "--json", "--no-mlflow"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = [v["name"] for v in data["variants"]]
    assert names == ["query-guidelines", "generic-guidelines", "no-chain-of-thought"]
    by_name = {v["name"]: v for v in data["variants"]}
    assert by_name["query-guidelines"]["kappa"]["value"] == 1.0 and by_name["no-chain-of-thought"]["kappa"]["value"] == 1.0
    assert by_name["generic-guidelines"]["kappa"]["value"] == 0.0
    tests = {t["variant"]: t for t in data["tests"]}
    generic = tests["generic-guidelines"]
    assert generic["kappa_difference"]["value"] == -1.0 and generic["n_pairs"] == 40
    assert generic["p_mcnemar"] < 0.01
    # An exact permutation test over the queries: of the 2^m ways to swap the two variants' labels on the m queries
    # where they differ, only none and all give a kappa difference as large as the observed one, so p = 2 / 2^m (a
    # query where every human label is highly_relevant has the same labels under both variants: swapping it is a no-op).
    data_set = esci_us()
    judged = data_set.select("test", 5, 8)
    differing = {j.query_id for j in judged if j.label != "highly_relevant"}
    assert generic["p_permutation"] == pytest.approx(2 / 2 ** len(differing))
    assert tests["no-chain-of-thought"]["p_mcnemar"] == 1.0
    calls = sum(scripted_workspace.calls.values())

    table = CliRunner().invoke(app, args[:-2] + ["--no-mlflow"])
    assert "| generic-guidelines | 0.000" in table.stdout and "-1.000" in table.stdout
    assert sum(scripted_workspace.calls.values()) == calls  # every variant's judgments came from the store


def test_an_unknown_variant_is_named(scripted_workspace, project):
    result = CliRunner().invoke(app, ["ablate", "--variants", "query-guidelines,clever", "--no-mlflow"])
    assert result.exit_code == 1 and "unknown variants ['clever']" in str(result.exception)

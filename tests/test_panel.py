"""Several LLM judges on the same pairs: each stored apart, the panel's label their majority, every rater compared."""

import json

from typer.testing import CliRunner

from rae.cli import app
from rae.datasets.bundled import esci_us
from rae.labels import Label
from rae.programs.product_text import product_text
from rae.studies.panel import majority
from tests.scripted import default_answer, field_text

SLICE = ["--split", "dev", "--queries", "2", "--per-query", "6"]
E, S, I = Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT  # noqa: E741 - the ESCI letters


def test_a_tie_goes_to_the_lower_label_unless_asked_otherwise():
    assert majority([E, E, I]) == E
    assert majority([E, S, I]) == I and majority([E, I]) == I
    assert majority([E, I], ties="higher") == E


def test_three_judges_are_stored_apart_and_the_panel_follows_their_majority(scripted_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text(
        'programs_dir = "programs"\ntracking_uri = "none"\n'
        '[judges.faithful]\nname = "openai/faithful"\n[judges.harsh]\nname = "openai/harsh"\n[judges.lenient]\nname = "openai/lenient"\n'
    )
    data = esci_us()
    human = {(j.query, product_text(data.catalog[j.product_id])): str(j.label) for j in data.judgments}

    def script(stage, request):
        if stage != "judgment":
            return default_answer(stage, request)
        label = {"openai/faithful": human[(field_text(request, "query"), field_text(request, "product"))], "openai/harsh": "irrelevant",
                 "openai/lenient": "highly_relevant"}[request.model]
        return {"reasoning": f"the {request.model} judge read the listing", "label": label}

    scripted_workspace.script = script
    result = CliRunner().invoke(app, ["annotate", *SLICE, "--judges", "faithful,harsh,lenient"])
    assert result.exit_code == 0, result.output
    assert scripted_workspace.calls["judgment"] == 3 * 12  # each judge judged every pair, under its own keys
    assert result.stdout.count("12 pairs: 12 judged") == 3

    report = json.loads(CliRunner().invoke(app, ["agreement", *SLICE, "--judges", "faithful,harsh,lenient", "--json"]).stdout)
    chosen = data.select("dev", 2, 6)
    # The panel: the human label where it is an end of the scale (two judges agree), irrelevant for a substitute (a tie).
    expected_accuracy = sum(j.label != S for j in chosen) / len(chosen)
    assert report["panel"]["accuracy"]["value"] == round(expected_accuracy, 4)
    assert report["by_judge"]["faithful"]["kappa"] == 1.0 and report["by_judge"]["harsh"]["accuracy"] < 1
    raters = report["raters"]
    assert set(raters["raters"]) == {"original", "faithful", "harsh", "lenient"}
    faithful = next(p for p in raters["rater_pairs"] if set(p["raters"]) == {"faithful", "original"})
    assert faithful["kappa"] == 1.0 and faithful["pairs"] == 12

"""The review loop without a browser: the queue, the page's API, labels flowing back, humans against humans."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rae.cli import app
from rae.config import load_settings
from rae.review.server import ReviewService, start_server
from rae.store.schema import HumanLabelRow, ReviewItemRow
from rae.workspace import Workspace
from tests.browser import chromium_page, needs_chromium
from tests.test_confidence import wavering

SLICE = ["--split", "dev", "--queries", "3", "--per-query", "6"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch, scripted_workspace) -> Path:
    """A project whose dev slice is judged (by the scripted model, with sampled confidence) and queued for review."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\nconfidence = "samples"\nconfidence_samples = 3\ntracking_uri = "none"\n')
    scripted_workspace.script = wavering
    assert CliRunner().invoke(app, ["annotate", *SLICE]).exit_code == 0
    result = CliRunner().invoke(app, ["review", "queue", "--size", "10", "--mix", "confidence:0.5,disagreement:0.5"])
    assert result.exit_code == 0, result.output
    return tmp_path


def call(url: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_queue_mixes_low_confidence_and_hard_disagreements_without_repeats(project):
    workspace = Workspace(load_settings())
    with workspace.store.session() as session:
        items = list(session.scalars(select(ReviewItemRow).order_by(ReviewItemRow.position)))
    assert len(items) == 10 and [i.position for i in items] == list(range(1, 11))
    assert len({(i.query_id, i.product_id) for i in items}) == 10
    reasons = [i.reason.split(":")[0] for i in items]
    assert "low confidence" in reasons and "hard disagreement" in reasons
    confidences = [float(i.reason.rsplit(" at ", 1)[1]) for i in items if i.reason.startswith("low confidence")]
    assert confidences == sorted(confidences)  # the least sure first
    again = CliRunner().invoke(app, ["review", "queue", "--size", "5", "--mix", "confidence:1"])
    assert again.exit_code == 0
    with workspace.store.session() as session:
        pairs = [(i.query_id, i.product_id) for i in session.scalars(select(ReviewItemRow))]
    assert len(pairs) == len(set(pairs))  # adding to a queue never repeats a pair


def test_the_page_api_saves_each_label_at_once_and_keeps_every_reviewer(project):
    service = ReviewService(Workspace(load_settings()), "review")
    server = start_server(service, port=0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(base + "/", timeout=10) as page:
            assert b"rae review" in page.read()
        status, state = call(base + "/api/next?reviewer=ana")
        first = state["item"]
        assert status == 200 and state["progress"] == {"labelled": 0, "total": 10, "reviewer": "ana", "queue": "review"}
        assert first["query"] and first["product"]["title"] and first["llm"]["label"] and first["requirements"]
        assert set(first["guidelines"]) == {"highly_relevant", "acceptable_substitute", "irrelevant"}

        status, state = call(base + "/api/label", {"item": first["id"], "label": "highly_relevant", "reviewer": "ana", "note": "exact match"})
        assert status == 200 and state["progress"]["labelled"] == 1 and state["item"]["id"] != first["id"]
        status, again = call(base + "/api/next?reviewer=ana")  # a reload continues at the next unlabelled pair
        assert again["item"]["id"] == state["item"]["id"]
        status, other = call(base + "/api/next?reviewer=ben")  # another reviewer starts at the first
        assert other["item"]["id"] == first["id"]
        call(base + "/api/label", {"item": first["id"], "label": "irrelevant", "reviewer": "ben"})

        assert call(base + "/api/label", {"item": first["id"], "label": "great", "reviewer": "ana"}) == (400, {"error": "unknown label 'great'"})
        assert call(base + "/api/label", {"item": 99999, "label": "irrelevant", "reviewer": "ana"})[0] == 400
        assert call(base + "/api/label", {"item": first["id"], "label": "irrelevant", "reviewer": " "})[0] == 400
    finally:
        server.shutdown()
    with service.workspace.store.session() as session:
        saved = {(r.reviewer, r.label, r.note) for r in session.scalars(select(HumanLabelRow))}
    assert saved == {("ana", "highly_relevant", "exact match"), ("ben", "irrelevant", "")}


def test_reviewed_labels_flow_back_as_a_new_labelled_set_and_humans_are_compared(project):
    from rae.labels import Label
    from rae.store.human_labels import save_label

    workspace = Workspace(load_settings())
    labelled = workspace.labelled.select("dev", 3, 6)
    unlabelled = next(p for p in workspace.labelled.catalog if p not in {j.product_id for j in workspace.labelled.judgments})
    q = labelled[0]
    save_label(workspace.store, q.query_id, q.query, unlabelled, Label.IRRELEVANT, "ana")  # a pair the set lacks
    for judgment in labelled[:6]:  # second opinions on labelled pairs
        save_label(workspace.store, judgment.query_id, judgment.query, judgment.product_id, judgment.label, "ana")

    plain = CliRunner().invoke(app, ["agreement", *SLICE, "--json", "--human-vs-human"])
    reviewed = CliRunner().invoke(app, ["agreement", "--split", "dev", "--json", "--with-reviews", "--human-vs-human"])
    assert plain.exit_code == 0 and reviewed.exit_code == 0, reviewed.output
    plain, reviewed = json.loads(plain.stdout), json.loads(reviewed.stdout)
    assert reviewed["labelled_set"] != plain["labelled_set"]  # a new, fingerprinted version
    assert reviewed["n_missing"] == plain["n_missing"] + 1 + (1113 - 18)  # the reviewed pair is in the set (not judged yet)
    humans = plain["human_vs_human"]
    assert humans["pairs_with_two_or_more_labels"] == 6 and humans["raters"] == ["ana", "original"]
    assert humans["rater_pairs"] == [{"raters": ["ana", "original"], "pairs": 6, "accuracy": 1.0, "kappa": humans["rater_pairs"][0]["kappa"]}]

    table = CliRunner().invoke(app, ["agreement", *SLICE, "--human-vs-human"]).stdout
    assert "Human vs human: 6 pairs labelled by two or more; Krippendorff's alpha" in table
    unasked = CliRunner().invoke(app, ["agreement", *SLICE]).stdout, CliRunner().invoke(app, ["agreement", *SLICE, "--json"]).stdout
    assert "Human vs human" not in unasked[0] and "human_vs_human" not in json.loads(unasked[1])  # only when asked for


KEYS = "31232113322113233121"  # twenty labels, by key


@pytest.fixture
def twenty_queued(tmp_path: Path, monkeypatch, scripted_workspace) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\nconfidence = "samples"\nconfidence_samples = 3\ntracking_uri = "none"\n')
    scripted_workspace.script = wavering
    assert CliRunner().invoke(app, ["annotate", "--split", "dev", "--queries", "4", "--per-query", "6"]).exit_code == 0
    assert CliRunner().invoke(app, ["review", "queue", "--name", "browser", "--size", "20", "--mix", "confidence:1"]).exit_code == 0
    return tmp_path


@needs_chromium
def test_a_reviewer_labels_twenty_pairs_with_the_keyboard_in_a_real_browser(twenty_queued):
    workspace = Workspace(load_settings())
    server = start_server(ReviewService(workspace, "browser"), port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}/?reviewer=e2e"
    try:
        with chromium_page() as page:
            page.goto(url)

            def label(position: int, key: str) -> None:
                page.wait_for_function(f"document.getElementById('reason').textContent.startsWith('#{position} ')")
                page.keyboard.press(key)
                page.wait_for_function(f"document.getElementById('status').textContent.startsWith('saved #{position}:')")

            label(1, KEYS[0])
            page.keyboard.press("n")  # a note, then back to the keys
            page.keyboard.type("brand is wrong")
            page.keyboard.press("Escape")
            label(2, KEYS[1])
            page.reload()  # closing or reloading loses nothing: the page continues at the third pair
            page.wait_for_function("document.getElementById('progress').textContent === '2 of 20 labelled'")
            for position, key in enumerate(KEYS[2:], start=3):
                label(position, key)
            page.wait_for_selector("#done", state="visible")
    finally:
        server.shutdown()

    by_key = {"1": "irrelevant", "2": "acceptable_substitute", "3": "highly_relevant"}
    with workspace.store.session() as session:
        saved = session.execute(
            select(ReviewItemRow.position, HumanLabelRow.label, HumanLabelRow.note)
            .join(HumanLabelRow, HumanLabelRow.item_id == ReviewItemRow.id)
            .where(HumanLabelRow.reviewer == "e2e")
            .order_by(ReviewItemRow.position)
        ).all()
    assert [label for _, label, _ in saved] == [by_key[k] for k in KEYS]
    assert saved[1].note == "brand is wrong"
    counted = json.loads(CliRunner().invoke(app, ["agreement", "--split", "dev", "--queries", "4", "--per-query", "6", "--json", "--human-vs-human"]).stdout)
    assert counted["human_vs_human"]["pairs_with_two_or_more_labels"] == 20  # every label the reviewer gave is counted

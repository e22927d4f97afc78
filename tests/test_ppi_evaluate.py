"""Human-corrected metrics end to end: evaluate, draw queries for humans, label them, report and plan again."""

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rae.cli import app
from rae.config import load_settings
from rae.datasets.bundled import ESCI_QUERY_LOG
from rae.evaluate.designs import defensive_share
from rae.evaluate.stored_run import drawn_for, load_evaluation
from rae.retrieve.trec import TrecRunEngine
from rae.store.human_labels import save_label
from rae.store.schema import EvaluationSampleRow, ReviewItemRow
from rae.workspace import Workspace
from tests.scripted import default_answer, field_text

EVALUATE = ["evaluate", "--engines", "bm25-title,bm25-full", "--queries", "6", "--k", "5", "--json", "--no-mlflow"]


@pytest.fixture
def evaluated(scripted_workspace, tmp_path, monkeypatch) -> dict:
    """An evaluation of 6 log queries (no human label yet): the judge's numbers only."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('programs_dir = "programs"\ntracking_uri = "none"\n')
    result = CliRunner().invoke(app, EVALUATE)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_evaluation_without_human_labels_reports_the_judge_alone(evaluated):
    assert evaluated["human_correction"] is None or evaluated["human_correction"]["labelled_queries"] == 0
    assert all("ppi" not in engine or engine["ppi"]["ndcg@5"]["n_human"] == 0 for engine in evaluated["engines"].values())


def label_whole_queue(workspace: Workspace, truth: str = "highly_relevant") -> int:
    with workspace.store.session() as session:
        items = list(session.scalars(select(ReviewItemRow).where(ReviewItemRow.queue == "review")))
    for item in items:
        save_label(workspace.store, item.query_id, item.query, item.product_id, truth, "ana", item_id=item.id)
    return len(items)


def test_drawn_queries_labelled_by_humans_correct_the_judges_numbers(evaluated):
    drawn = CliRunner().invoke(app, ["review", "queue", "--for-evaluation", "latest", "--queries", "3", "--design", "uniform"])
    assert drawn.exit_code == 0, drawn.output
    assert "drew 3 queries" in drawn.stdout and "(uniform: all 3)" in drawn.stdout
    workspace = Workspace(load_settings())
    with workspace.store.session() as session:
        samples = list(session.scalars(select(EvaluationSampleRow)))
    assert len(samples) == 3 and {s.inclusion_probability for s in samples} == {0.5}  # 3 of 6, uniformly
    queued = label_whole_queue(workspace)
    assert queued > 0

    # Every pair of the three drawn pools now has a human label ("highly_relevant"): report again, with no LM call.
    report = CliRunner().invoke(app, ["report", "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    correction = data["human_correction"]
    assert correction["labelled_queries"] == 3 and correction["design"] == "uniform" and not correction["provisional"]
    drawn_ids = {s.query_id for s in samples}
    for name, engine in data["engines"].items():
        three = engine["ppi"]["ndcg@5"]
        assert three["n_human"] == 3 and three["n_queries"] == 6
        # Humans said every product is highly relevant: the humans' nDCG is 1 where the engine returned something, 0 where not.
        ranked = TrecRunEngine(Path(data["report"]) / "runs" / f"{name}.trec").rankings
        assert three["humans_only"]["value"] == pytest.approx(sum(bool(ranked.get(q)) for q in drawn_ids) / 3, abs=1e-4)
        assert set(three) >= {"llm_only", "humans_only", "ppi", "effective_n", "lam"}
    comparison = data["comparisons"][0]
    assert set(comparison["ppi"]) >= {"llm_only", "humans_only", "ppi", "p_value"}
    table = CliRunner().invoke(app, ["report"]).stdout
    assert "ndcg@5 three ways" in table and "humans only, 3 queries (uniform)" in table


def test_the_labels_given_before_the_draw_are_held_by_what_it_corrects_and_later_ones_are_not(evaluated):
    """PPI needs the prediction fixed before the draw: the human labels given before it are, so the judge's metric
    with them in its place is what the drawn queries correct; the drawn queries' own labels, given after, are not."""
    workspace = Workspace(load_settings())
    stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None)
    earlier = stored.pool_pairs()[::3]
    for pair in earlier:
        save_label(workspace.store, pair.query_id, pair.query, pair.product_id, "irrelevant", "bo")
    drawn = CliRunner().invoke(app, ["review", "queue", "--for-evaluation", "latest", "--queries", "4", "--design", "uniform"])
    assert drawn.exit_code == 0, drawn.output
    later = label_whole_queue(workspace)
    correction = json.loads(CliRunner().invoke(app, ["report", "--json"]).stdout)["human_correction"]
    assert correction["labelled_queries"] == 4 and correction["labels_known_before_the_draw"] == len(earlier)
    assert f"the {len(earlier)} human labels of these pools given before the draw" in correction["summary"]
    plan = json.loads(CliRunner().invoke(app, ["plan", "--target-width", "0.2", "--json"]).stdout)
    assert plan["known_pairs"] == len(earlier) and {row["labelled_now"] for row in plan["rows"]} == {4}  # planned from the drawn queries
    moment = drawn_for(workspace.store, stored.population).made_at
    assert later > 0 and len(workspace.human_labels_before(moment).judgments) + later == len(workspace.human_labels.judgments)


def test_the_same_draw_again_after_labelling_draws_the_same_queries_and_keeps_its_time(evaluated):
    """The active draw is steered by the labels its prediction holds; the drawn queries' own labels, given after it,
    must neither move a second run of the same command nor count as given before it."""
    command = ["review", "queue", "--for-evaluation", "latest", "--queries", "4", "--design", "active"]
    drew = CliRunner().invoke(app, command)
    assert drew.exit_code == 0, drew.output
    first, workspace = stored_probabilities(), Workspace(load_settings())
    stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None)
    # How far the draw followed the judge's spread is said, and held: no query below that share of a uniform chance.
    assert f"{defensive_share(None):.0%} of the chance spread evenly, since no human labels measure the judge's agreement" in drew.stdout
    assert min(first.values()) * len(stored.queries) >= defensive_share(None) - 1e-4  # (stored_probabilities rounds)
    made = drawn_for(workspace.store, stored.population).made_at
    assert label_whole_queue(workspace) > 0
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0 and "queued 0 pairs" in again.stdout, again.output
    assert stored_probabilities() == first and drawn_for(workspace.store, stored.population).made_at == made
    correction = json.loads(CliRunner().invoke(app, ["report", "--json"]).stdout)["human_correction"]
    assert correction["labels_known_before_the_draw"] == 0 and not correction["provisional"]
    other = [*command, "--seed", "1"]  # a draw that replaces it, steered by today's labels, then the same command again
    replacing = CliRunner().invoke(app, other)
    assert replacing.exit_code == 0 and f"replaces the earlier draw of {made:%Y-%m-%d %H:%M} UTC (active, " in replacing.stdout
    assert "replaces" not in again.stdout  # the same draw again replaces nothing
    replaced, made = stored_probabilities(), drawn_for(workspace.store, stored.population).made_at
    label_whole_queue(workspace)
    assert "queued 0 pairs" in CliRunner().invoke(app, other).stdout and stored_probabilities() == replaced
    assert drawn_for(workspace.store, stored.population).made_at == made


def test_a_stratified_draw_takes_the_queries_labelled_whole_before_it_whole_and_labels_only_the_others(evaluated):
    """Two queries' pools were labelled whole before the draw: the stratified design takes them whole (probability 1,
    nothing queued), draws its two among the other four, and the report corrects with all four."""
    workspace = Workspace(load_settings())
    stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None)
    pools = stored.pools()
    earlier = sorted(q for q in pools if pools[q])[:2]
    for pair in stored.pool_pairs():
        if pair.query_id in earlier:
            save_label(workspace.store, pair.query_id, pair.query, pair.product_id, "highly_relevant", "bo")
    drawn = CliRunner().invoke(app, ["review", "queue", "--for-evaluation", "latest", "--queries", "2", "--design", "stratified"])
    assert drawn.exit_code == 0, drawn.output
    assert "drew 2 queries" in drawn.stdout and "the 2 queries whose pools humans labelled whole before are taken whole" in drawn.stdout
    probabilities = stored_probabilities()
    assert {q: probabilities[q] for q in earlier} == dict.fromkeys(earlier, 1.0) and len(probabilities) == 4
    with workspace.store.session() as session:
        queued = {item.query_id for item in session.scalars(select(ReviewItemRow))}
    assert queued and not queued & set(earlier)
    label_whole_queue(workspace)
    correction = json.loads(CliRunner().invoke(app, ["report", "--json"]).stdout)["human_correction"]
    assert correction["labelled_queries"] == 4 and not correction["provisional"]
    verdict = CliRunner().invoke(app, ["gate", "--baseline", "bm25-title", "--candidate", "bm25-full", "--queries", "6", "--k", "5", "--json"])
    basis = json.loads(verdict.stdout)["basis"]
    assert "corrected by 2 drawn by the stratified design and labelled whole, beside the 2 queries labelled whole before" in basis, basis


@pytest.mark.parametrize("design", ["stratified", "uniform", "active"])
def test_when_earlier_labels_cover_every_pool_the_metric_is_known_exactly_and_the_plan_asks_for_no_label(evaluated, design):
    """Every pool labelled whole before the draw: the stratified draw takes every query whole and queues nothing, the
    humans' difference is known exactly (an interval of width zero), and the stratified plan needs no label. Whatever
    design drew the queries, the prediction is then the humans' own metric: known exactly too."""
    workspace = Workspace(load_settings())
    stored = load_evaluation(workspace.store, Path(workspace.settings.reports_dir), None)
    for i, pair in enumerate(stored.pool_pairs()):
        save_label(workspace.store, pair.query_id, pair.query, pair.product_id, ("irrelevant", "highly_relevant")[i % 2], "bo")
    drawn = CliRunner().invoke(app, ["review", "queue", "--for-evaluation", "latest", "--queries", "2", "--design", design])
    if design == "stratified":
        assert "drew 0 queries" in drawn.stdout and "the 6 queries whose pools humans labelled whole before are taken whole" in drawn.stdout
    assert "queued 0 pairs" in drawn.stdout, drawn.output
    data = json.loads(CliRunner().invoke(app, ["report", "--json"]).stdout)
    ppi = data["comparisons"][0]["ppi"]["ppi"]
    assert ppi["ci_low"] == ppi["value"] == ppi["ci_high"]
    assert "cover every pool whole, so the humans' metric is known exactly" in data["human_correction"]["summary"]
    plan = json.loads(CliRunner().invoke(app, ["plan", "--target-width", "0.1", "--json"]).stdout)
    assert plan["known_queries"] == 6 and {row["queries"]["stratified"] for row in plan["rows"]} == {0}
    verdict = CliRunner().invoke(app, ["gate", "--baseline", "bm25-title", "--candidate", "bm25-full", "--queries", "6", "--k", "5", "--json"])
    assert "covered the pools of all 6 queries whole before the draw: known exactly" in json.loads(verdict.stdout)["basis"], verdict.output


def test_a_panel_of_judges_steers_the_active_draw_where_they_disagree(evaluated, scripted_workspace, tmp_path):
    """Two more judges judge the evaluation's pools (through the store): one agrees with the evaluation's judge, one
    turns every label upside down on the queries of odd length. The active draw's probabilities follow their
    disagreement, and a uniform draw takes no panel."""
    with (tmp_path / "rae.toml").open("a") as handle:
        handle.write('[judges.echo]\nname = "openai/echo"\n[judges.contrary]\nname = "openai/contrary"\n')

    def script(stage, request):
        answer = default_answer(stage, request)
        if stage == "judgment" and request.model == "openai/contrary" and len(field_text(request, "query")) % 2:
            answer["label"] = {"highly_relevant": "irrelevant", "irrelevant": "highly_relevant"}.get(answer["label"], answer["label"])
        return answer

    scripted_workspace.script = script
    draw = ["review", "queue", "--for-evaluation", "latest", "--queries", "3", "--design", "active", "--seed", "1"]
    alone = CliRunner().invoke(app, draw)
    assert alone.exit_code == 0, alone.output
    alone_p, before = stored_probabilities(), scripted_workspace.calls["judgment"]
    steered = CliRunner().invoke(app, [*draw, "--judges", "echo,contrary"])
    assert steered.exit_code == 0, steered.output
    assert "steered by the judges echo (" in steered.stdout and "contrary (" in steered.stdout
    paid = scripted_workspace.calls["judgment"] - before
    assert paid > 0 and paid % 2 == 0  # each judge judged every pair of the pools once
    assert stored_probabilities() != alone_p
    again = CliRunner().invoke(app, [*draw, "--judges", "echo,contrary"])
    assert again.exit_code == 0 and scripted_workspace.calls["judgment"] == before + paid  # the store held their judgments
    refused = CliRunner().invoke(app, [*draw[:-4], "--design", "uniform", "--judges", "echo"])
    assert refused.exit_code != 0 and "--judges steers a draw" in str(refused.exception)
    with (tmp_path / "rae.toml").open("a") as handle:
        handle.write('[judges.pricey]\nname = "openai/pricey"\n[prices."openai/pricey"]\ninput_per_million = 1000.0\noutput_per_million = 1000.0\n')
    broke = CliRunner().invoke(app, [*draw, "--judges", "pricey", "--budget", "0.001"])
    assert broke.exit_code != 0 and "the budget stopped judge pricey before it judged any pair" in str(broke.exception)


def stored_probabilities() -> dict[str, float]:
    with Workspace(load_settings()).store.session() as session:
        return {s.query_id: round(s.inclusion_probability, 6) for s in session.scalars(select(EvaluationSampleRow))}


def test_plan_says_how_many_human_labels_with_and_without_the_judge(evaluated):
    CliRunner().invoke(app, ["review", "queue", "--for-evaluation", "latest", "--queries", "4"])
    workspace = Workspace(load_settings())
    with workspace.store.session() as session:
        items = list(session.scalars(select(ReviewItemRow)))
    for i, item in enumerate(items):  # mixed labels, so the humans' metric varies between queries
        save_label(workspace.store, item.query_id, item.query, item.product_id, ("irrelevant", "highly_relevant")[i % 2], "ana", item_id=item.id)
    result = CliRunner().invoke(app, ["plan", "--target-width", "0.1", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    rows = {row["what"]: row for row in plan["rows"]}
    assert set(rows) == {"bm25-title", "bm25-full", "bm25-full - bm25-title"}
    title = rows["bm25-title"]
    assert title["labelled_now"] == 4 and set(title["queries"]) == {"humans only", "uniform", "stratified", "active"}
    humans = title["queries"]["humans only"]
    assert humans is None or title["cost"]["humans only"] == pytest.approx(humans * plan["pairs_per_query"] * 0.05, rel=1e-2)
    table = CliRunner().invoke(app, ["plan", "--target-width", "0.1"]).stdout
    assert "| what | labelled now | width | humans only | uniform | stratified | active |" in table
    needed = {}
    for margin in ("0.5", "2.0"):  # for a gate: the farther the difference from -margin, the fewer labels decide it
        gate_plan = json.loads(CliRunner().invoke(app, ["plan", "--margin", margin, "--json"]).stdout)
        row = next(r for r in gate_plan["rows"] if r["what"] == "bm25-full - bm25-title")
        assert gate_plan["margin"] == float(margin) and row["width"] > 0, row
        needed[margin] = row["queries"]["humans only"] or 10**6
    assert needed["2.0"] <= needed["0.5"]


def test_ppi_check_with_simulated_judges_covers_and_narrows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["ppi-check", "--no-judge", "--repetitions", "200", "--sizes", "20", "--kappas", "0.8", "--calibrated", "0.8", "--engines", "bm25-title",
            "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {row["judge"]: row for row in json.loads(result.stdout)["rows"]}
    strong, raising = rows["simulated, kappa 0.8"], rows["simulated, raises 30% of labels"]
    knowing = rows["simulated, kappa 0.8, knows its guesses"]
    for row in (strong, raising, knowing):
        assert row["n"] == 20 and min(row["coverage"].values()) >= 0.9 and row["width_ratio"] < 0.8
    assert knowing["llm_only"] == strong["llm_only"]  # the same labels; only what it believes of them differs
    assert raising["llm_only"] - raising["truth"] > 0.03  # the judge alone is biased upward; PPI still covers the truth


def test_ppi_check_on_the_first_queries_only_studies_that_smaller_population(tmp_path, monkeypatch):
    """``--queries N`` makes the population the split's first N queries: the truth and the draws are theirs."""
    monkeypatch.chdir(tmp_path)
    base = ["ppi-check", "--no-judge", "--repetitions", "50", "--sizes", "10", "--kappas", "0.8", "--engines", "bm25-title", "--json"]
    whole = json.loads(CliRunner().invoke(app, base).stdout)
    part = json.loads(CliRunner().invoke(app, [*base, "--queries", "30"]).stdout)
    assert (whole["queries"], part["queries"]) == (120, 30)
    assert part["rows"][0]["truth"] != whole["rows"][0]["truth"]


def test_ppi_check_when_the_candidate_leaves_the_labelled_pool(tmp_path, monkeypatch):
    """Existing labels cover the baseline's lists only; the draws' intervals still cover the truth (the humans' metric
    over every query), narrower when the judge holds the existing labels, and the table sets the old rule, the
    existing labels' check and the judge alone beside them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rae.toml").write_text('tracking_uri = "none"\n[engines.bm25-desc]\nkind = "bm25"\nfields = { description = 1.0 }\n')
    args = ["ppi-check", "--no-judge", "--repetitions", "150", "--sizes", "10", "--kappas", "0.6", "--leaving", "bm25-full,bm25-desc", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout)["leaving_pool"]
    assert study["left_pool"] > 0.3 and study["complete"] < study["queries"] / 2
    rows = {(r["judge"], r["estimate"]): r for r in study["rows"]}
    holding = ", the judge holding the existing labels"
    for design in ("uniform", "stratified", "active"):
        for what in ("", holding):
            drawn = rows[("simulated, kappa 0.6", f"{'an' if design == 'active' else 'a'} {design} draw, labelled whole{what}")]
            assert drawn["coverage"] >= 0.9 and drawn["passes"] == 0.0 and drawn["truth"] < -0.1
    plain, held = (rows[("simulated, kappa 0.6", f"a uniform draw, labelled whole{what}")]["width"] for what in ("", holding))
    assert held < 0.95 * plain  # the existing labels leave less to correct
    plans = study["plans"]["simulated, kappa 0.6"]
    alone, holding_plan = (plans[what]["queries"]["uniform"] for what in ("the judge's labels", "the judge's, holding the existing labels"))
    assert holding_plan < alone
    assert ("simulated, kappa 0.6", "complete queries, weight one (the old rule)") in rows


def test_ppi_check_sets_the_click_judgments_beside_the_simulated_judges_and_still_covers(tmp_path, monkeypatch):
    """The bundled log's clicks touch few labelled pairs: as a judge they know almost nothing, so every design falls
    back to about the humans-only interval, the active one included."""
    monkeypatch.chdir(tmp_path)
    refused = CliRunner().invoke(app, ["ppi-check", "--no-judge", "--clicks", "--repetitions", "10", "--kappas", "0.8"])
    assert refused.exit_code != 0 and "judgments from-clicks" in refused.output
    assert CliRunner().invoke(app, ["judgments", "from-clicks", str(ESCI_QUERY_LOG)]).exit_code == 0
    args = ["ppi-check", "--no-judge", "--clicks", "--repetitions", "300", "--sizes", "10", "--kappas", "0.8", "--engines", "bm25-title", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    clicks = next(row for row in json.loads(result.stdout)["rows"] if row["judge"].startswith("clicks"))
    assert min(clicks["coverage"].values()) >= 0.9 and clicks["coverage_humans"] >= 0.9
    assert max(clicks["width"].values()) <= 1.1 * clicks["width_humans"]

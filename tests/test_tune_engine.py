"""``rae tune-engine``: it finds the better configuration with a good judge, claims no gain the held-out check does not
confirm, resumes a killed study without paying twice, and stops at its caps."""

import json
from pathlib import Path

import optuna
from typer.testing import CliRunner

from rae.cli import app
from rae.config import BM25Spec, load_settings
from rae.datasets.records import Query
from rae.improve.heldout import JudgeHeldout
from rae.improve.search_space import Parameter
from rae.improve.trial_scoring import Scored
from rae.improve.tuning import TuningCaps, tune
from rae.stats import Estimate

WEAK_TITLE = """
[engines.weak-title]
kind = "bm25"
fields = { title = 0.05, description = 1.0 }
tune = { "fields.title" = [0.0, 5.0] }
"""


def with_engine(project: Path, extra: str = "") -> Path:
    with (project / "rae.toml").open("a") as handle:
        handle.write(WEAK_TITLE + extra)
    return project


def run(*args: str) -> dict:
    result = CliRunner().invoke(app, ["tune-engine", "weak-title", "--json", *args])
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    return json.loads(result.stdout)


def test_a_good_simulated_judge_finds_the_better_title_weight_and_the_held_out_check_confirms_it(project):
    """Whether the title's weight helps can be computed from the human labels (the truth note): it does."""
    with_engine(project)
    found = run("--simulated-judge", "0.9", "--trials", "6", "--split", "all", "--queries", "120")
    best = found["best"]["values"]["fields.title"]
    assert best > found["start"]["values"]["fields.title"]
    assert best == round(best, 3) and f"title = {best}\n" in found["tuned_toml"]  # a thousandth of the range: what was tried is written
    assert found["gain_confirmed"] and found["verdict"].startswith("gain confirmed")
    truth = next(n for n in found["notes"] if n.startswith("truth"))
    assert "(+0." in truth  # the humans' labels agree: the best is better on the held-out queries
    assert "by the stratified design" in found["heldout"]["basis"] and found["heldout"]["human_labelled"] == 10
    page = Path(found["report"]).read_text()
    assert "data:image/png;base64," in page and "gain confirmed" in page
    assert "<table" in page and "fields.title" in page and "<pre>" not in page.split("<h2>The best trial")[0]  # the trials as a table


class Scripted:
    """A scorer whose scores a test sets: a function of the trial's title weight, and no human labels."""

    def __init__(self, slope: float):
        self.slope, self.weight = slope, 0.0

    def new_pairs(self, rankings) -> int:
        return 0

    def score(self, rankings) -> Scored:
        value = 0.5 + self.slope * self.weight
        per_query = {q: value + 0.01 * (i % 3) for i, q in enumerate(sorted(rankings))}
        return Scored(Estimate(value, value - 0.01, value + 0.01), "scripted", per_query, {})


def test_a_gain_only_the_tuning_queries_show_is_not_claimed(tiny):
    """The tuning scores climb with the title weight (a judge biased towards titles); the held-out ones do not move."""
    tuning, heldout = Scripted(slope=0.05), Scripted(slope=0.0)
    spec = BM25Spec(fields={"title": 0.05, "description": 1.0}, tune={"fields.title": (0.0, 5.0)})

    def build(trial_spec):
        tuning.weight = heldout.weight = trial_spec.fields["title"]
        return type("Fixed", (), {"search": lambda self, query, k: ["p1"]})()

    queries = [Query(f"q{i}", f"query {i}") for i in range(6)]
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    check = JudgeHeldout(queries, heldout, {}, 10, "ndcg@10")
    result = tune("weak-title", spec, [Parameter("fields.title", 0.0, 5.0, 0.05)], build, (queries, tuning), check, 10, "ndcg@10",
                  study, TuningCaps(trials=5))
    assert result.best.number != result.start.number  # the study did climb on the tuning queries
    assert not result.gain_confirmed and result.verdict().startswith("no gain confirmed")


def test_a_killed_study_resumes_without_paying_twice(project, scripted_workspace):
    with_engine(project)
    args = ["--split", "dev", "--queries", "10", "--k", "5", "--no-write-config"]
    first = run("--trials", "2", *args)
    paid = scripted_workspace.calls["judgment"]
    assert len(first["trials"]) == 2 and paid == sum(t["new_pairs"] for t in first["trials"]) + first["heldout_new_pairs"]
    storage = f"sqlite:///{project / '.rae' / 'tune-engine.db'}"
    optuna.load_study(study_name="weak-title", storage=storage).ask()  # a trial left running, as a killed process leaves it
    again = run("--trials", "2", *args)
    assert scripted_workspace.calls["judgment"] == paid and again["best"] == first["best"]  # nothing new to do, nothing paid
    more = run("--trials", "3", *args)
    finished = [t for t in more["trials"] if t["state"] == "complete"]
    assert len(finished) == 3 and scripted_workspace.calls["judgment"] - paid == finished[-1]["new_pairs"] + more["heldout_new_pairs"]


def test_the_pair_cap_and_the_budget_stop_the_study(project, scripted_workspace):
    name = load_settings().model.name
    with_engine(project, f'\n[prices."{name}"]\ninput_per_million = 10000\noutput_per_million = 10000\n')
    capped = CliRunner().invoke(app, ["tune-engine", "weak-title", "--split", "dev", "--queries", "10", "--k", "5", "--max-new-pairs", "3", "--study", "capped"])
    assert capped.exit_code == 1 and "past --max-new-pairs 3" in str(capped.exception)
    assert scripted_workspace.calls["judgment"] == 0  # stopped before paying for the trial
    budget = CliRunner().invoke(app, ["tune-engine", "weak-title", "--split", "dev", "--queries", "10", "--k", "5", "--budget", "0.01", "--study", "budgeted"])
    assert budget.exit_code == 1 and "the budget ran out during trial 0" in str(budget.exception)


def test_search_spaces_of_each_engine_kind():
    import pytest

    from rae.config import ConfigError, FusionSpec, SearchClusterSpec, SolrSpec
    from rae.improve.search_space import parameters, with_values

    template = '{"query": {"multi_match": {"query": "{{query}}", "fields": ["title^{{title_boost}}", "description"]}}, "size": {{k}}}'
    cluster = SearchClusterSpec(url="http://x/_search", query=template, tune={"title_boost": (1.0, 10.0, 3.0)})
    assert [p.start for p in parameters("os", cluster)] == [3.0]
    assert '"title^4.5"' in with_values(cluster, {"title_boost": 4.5}).query and "{{query}}" in with_values(cluster, {"title_boost": 4.5}).query
    with pytest.raises(ConfigError, match="give it a start value"):
        parameters("os", cluster.model_copy(update={"tune": {"title_boost": (1.0, 10.0)}}))
    with pytest.raises(ConfigError, match="is no {{placeholder}}"):
        parameters("os", cluster.model_copy(update={"tune": {"boost": (1.0, 10.0)}}))
    solr = SolrSpec(url="http://x/select", def_type="edismax", qf="title^{{t}} description", tune={"t": (1.0, 5.0, 2.0)})
    assert with_values(solr, {"t": 3.0}).qf == "title^3 description"
    fusion = FusionSpec(engines=("bm25-full", "dense"), tune={"k": (10.0, 100.0), "weights.dense": (0.0, 2.0)})
    assert [p.start for p in parameters("hybrid", fusion)] == [60.0, 1.0]
    tuned = with_values(fusion, {"k": 20.0, "weights.dense": 0.5})
    assert tuned.k == 20.0 and tuned.weights == {"dense": 0.5}
    with pytest.raises(ConfigError, match="names no fused engine"):
        parameters("hybrid", fusion.model_copy(update={"tune": {"weights.other": (0.0, 1.0)}}))
    assert [(p.digits, p.on_grid(p.low + 7 * p.step)) for p in parameters("hybrid", fusion)] == [(2, 10.07), (3, 0.007)]
    assert Parameter("b", 0.7, 0.8, 0.75).digits == 4 and Parameter("x", 0.0, 5.0, 0.12345).digits == 5  # the start lies on the grid
    assert Parameter("x", 0.0, 5.0, 1.0).on_grid(4.818313802505147) == 4.818313802505147  # a value an older study tried stays
    bm25 = BM25Spec(fields={"title": 1.0}, tune={"k1": (0.5, 2.0), "fields.brand": (0.0, 3.0)})
    assert with_values(bm25, {"k1": 0.9, "fields.brand": 2.0}).fields == {"title": 1.0, "brand": 2.0}


def test_a_storage_it_cannot_open_is_one_line(project):
    with_engine(project)
    result = CliRunner().invoke(app, ["tune-engine", "weak-title", "--trials", "1", "--storage", "postgresql+psycopg://u:secret@127.0.0.1:9/x"])
    message = str(result.exception)
    assert result.exit_code == 1 and "cannot open the study's storage postgresql+psycopg://u:***@127.0.0.1:9/x" in message
    assert "secret" not in message and "\n" not in message


def test_labels_a_team_holds_stop_a_gain_they_contradict(tiny):
    """The judge shows a held-out gain; the humans' own labels on those queries show none: no gain confirmed."""
    queries = [Query(f"q{i}", f"query {i}") for i in range(8)]
    rising = Scripted(slope=0.05)

    class Engine:
        def __init__(self, products):
            self.products = products

        def search(self, query, k):
            return self.products

    human = {q.query_id: {"good": 2, "bad": 0} for q in queries}
    start, best = Engine(["good", "bad"]), Engine(["bad", "good"])  # humans: best is worse
    rising.weight = 1.0
    check = JudgeHeldout(queries, _Fixed({"start": 0.5, "best": 0.6}), human, 2, "ndcg@2")
    checked = check.check(start, best)
    assert checked.difference.interval.ci_low > 0 and checked.humans.estimate.value < 0 and not checked.confirmed
    assert "no gain by the humans' own labels" in checked.reasons[0]


class _Fixed:
    """A scorer that gives the start and the best fixed judge scores, told apart by their first product."""

    def __init__(self, scores):
        self.scores = scores

    def new_pairs(self, rankings) -> int:
        return 0

    def score(self, rankings) -> Scored:
        which = "start" if next(iter(rankings.values()))[0] == "good" else "best"
        per_query = {q: self.scores[which] + 0.001 * i for i, q in enumerate(sorted(rankings))}
        return Scored(Estimate(self.scores[which], 0, 1), "scripted", per_query, {})

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import BM25Spec
from rae.evaluate.compare import paired_comparison
from rae.evaluate.designs import draw
from rae.evaluate.evaluation import evaluate_engines, human_gains_for
from rae.evaluate.metrics import engine_metrics
from rae.evaluate.report import write_report
from rae.retrieve.build import build_engines
from rae.retrieve.rankings import retrieve_all
from tests.browser import chromium_page, needs_chromium


class FixedEngine:
    def __init__(self, rankings):
        self.rankings = rankings

    def search(self, query, k):
        return self.rankings.get(query.query_id, [])[:k]


def test_metrics_use_graded_gains_and_count_unjudged_products():
    gains = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"d": 0}}
    metrics = engine_metrics({"q1": ["a", "b", "x"], "q2": ["d"]}, gains, k=3)
    row = metrics.per_query.loc["q1"]
    assert row["ndcg@3"] == pytest.approx(1.0)  # a (2) then b (1): the ideal order
    assert row["precision_hr@3"] == pytest.approx(1 / 3)
    assert row["judged@3"] == pytest.approx(2 / 3) and row["irrelevant@3"] == 0.0
    assert metrics.per_query.loc["q2", "irrelevant@3"] == 1.0
    worse = engine_metrics({"q1": ["c", "b", "a"], "q2": ["d"]}, gains, k=3)
    assert worse.per_query.loc["q1", "ndcg@3"] < 1.0


def test_a_paired_comparison_gives_a_p_value_an_effect_and_wins():
    gains = {f"q{i}": {"good": 2, "bad": 0} for i in range(8)}
    better = engine_metrics({q: ["good", "bad"] for q in gains}, gains, k=2)
    worse = engine_metrics({q: ["bad", "good"] for q in gains}, gains, k=2)
    comparison = paired_comparison("worse", "better", worse, better, "ndcg@2")
    assert comparison.difference > 0 and comparison.wins_b == 8 and comparison.p_value < 0.01
    assert comparison.verdict == "better is better"
    same = paired_comparison("a", "b", better, better, "ndcg@2")
    assert same.p_value == 1.0 and same.verdict == "no significant difference"


def evaluated(engines, queries, judging, tiny, **options):
    """The engines top 3, judged through ``judging`` and compared."""
    return evaluate_engines(retrieve_all(engines, queries, 3, tiny.catalog), queries, judging, tiny.catalog, k=3, progress=False, **options)


def tiny_engines(tiny):
    specs = {"title": BM25Spec(fields={"title": 1.0}), "brand": BM25Spec(fields={"brand": 1.0, "title": 0.1})}
    return build_engines(list(specs), specs, tiny.catalog, Path("."))


def test_an_evaluation_judges_the_union_once_and_a_new_engine_pays_only_its_new_pairs(scripted, judging, tiny):
    queries = tiny.queries()
    first = evaluated(tiny_engines(tiny), queries, judging, tiny)
    title, brand = first.engines
    assert title.annotation.lm_calls == {"requirements_guidelines": 6, "judgment": 9}
    new_for_brand = len({(q, p) for q, ps in brand.rankings.items() for p in ps} - {(q, p) for q, ps in title.rankings.items() for p in ps})
    assert brand.annotation.lm_calls == {"requirements_guidelines": 0, "judgment": new_for_brand}

    third = FixedEngine({"q1": ["p1", "p4"], "q2": ["p8", "p5"], "q3": ["p12"]})
    engines = {**tiny_engines(tiny), "fixed": third}
    second = evaluated(engines, queries, judging, tiny)
    seen = {(q, p) for run in first.engines for q, ps in run.rankings.items() for p in ps}
    added = {(q, p) for q, ps in second.engines[2].rankings.items() for p in ps} - seen
    assert [run.annotation.total_calls for run in second.engines] == [0, 0, len(added)]
    assert second.engines[2].annotation.lm_calls["judgment"] == len(added) > 0
    assert all(run.annotation.total.input_tokens == 100 * run.annotation.total_calls for run in second.engines)


def test_the_validity_check_compares_engine_orders_under_both_label_sets(scripted, judging, tiny):
    queries = tiny.queries()
    good = FixedEngine({"q1": ["p1", "p2", "p3"], "q2": ["p5", "p6", "p7"], "q3": ["p9", "p10", "p11"]})
    bad = FixedEngine({"q1": ["p3", "p4", "p1"], "q2": ["p8", "p7", "p5"], "q3": ["p11", "p12", "p9"]})
    evaluation = evaluated({"good": good, "bad": bad}, queries, judging, tiny, human_gains=human_gains_for(queries, tiny))
    validity = evaluation.validity
    assert validity.n_queries == 3 and validity.human["good"] > validity.human["bad"]
    assert validity.llm["good"] > validity.llm["bad"]  # the scripted judge's word overlap agrees here
    assert validity.verdicts[0].agrees and validity.agreeing_verdicts == 1
    assert validity.human_judged == {"good": 1.0, "bad": 1.0}


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables = [], 0

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def tiny_report(judging, tiny, directory: Path) -> Path:
    """Every query drawn for human labelling (a uniform draw of all of them), and the tiny set's labels cover them."""
    queries = tiny.queries()
    drawn = draw("uniform", [q.query_id for q in queries], len(queries))
    evaluation = evaluated(tiny_engines(tiny), queries, judging, tiny, human_gains=human_gains_for(queries, tiny), drawn=drawn)
    return write_report(evaluation, {"run_id": "r1", "model": "scripted"}, directory)


def test_the_report_is_self_contained_html_with_plots_and_trec_files(scripted, judging, tiny, tmp_path):
    directory = tiny_report(judging, tiny, tmp_path / "r1")
    page = Images()
    page.feed((directory / "report.html").read_text())
    # plots: metrics, three ways (PPI), one comparison, labels; tables: engines, comparison, validity, the labels' own
    # check, PPI engines, PPI comparison, worst queries
    assert len(page.images) == 4 and page.tables == 7
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (directory / "report.md").read_text()
    assert "## Comparisons" in markdown and "## Validity" in markdown
    assert json.loads((directory / "metrics.json").read_text())["engines"]["title"]["metrics"]["judged@3"]["value"] == 1.0
    assert (directory / "runs" / "title.trec").read_text().startswith("q1 Q0 ")
    assert re.match(r"q1 0 p\d+ [012]", (directory / "runs" / "llm.qrels").read_text())
    assert set(pd_columns(directory / "per_query.csv")) >= {"engine", "query_id", "query", "stratum", "ndcg@3"}


@needs_chromium
def test_the_html_report_renders_its_plots_and_drill_down_in_a_real_browser(scripted, judging, tiny, tmp_path):
    report = tiny_report(judging, tiny, tmp_path / "r1") / "report.html"
    with chromium_page() as page:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort())
        page.goto(report.as_uri())
        sizes = page.eval_on_selector_all("img.plot", "images => images.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(sizes) == 4 and all(done and width > 100 and height > 100 for done, width, height in sizes)
        assert page.eval_on_selector_all("table", "tables => tables.length") == 7
        assert "rae evaluation r1" in page.title() + page.inner_text("body")

        # The drill-down: every query, each engine's top 3 side by side, labels, reasoning on demand.
        assert page.locator("section.dd-query").count() == 3
        first = page.locator("section.dd-query").first
        assert first.locator(".dd-engine").count() == 2 and first.locator(".dd-item").count() == 6
        reasoning = first.locator(".dd-item details").first
        assert not reasoning.locator(".dd-reasoning").is_visible()
        reasoning.locator("summary").click()
        assert "query words appear" in reasoning.locator(".dd-reasoning").inner_text()  # the scripted judge's reasoning
        assert first.locator(".dd-human").count() == 6  # every product of the tiny set has a human label

        # One product returned by both engines carries one stripe colour in both columns.
        shared = page.eval_on_selector_all(".dd-query:first-child .dd-item", """items => {
            const seen = {}; for (const i of items) (seen[i.dataset.product] ||= []).push(i.style.borderLeftColor);
            return Object.values(seen).filter(c => c.length > 1).every(c => c.every(x => x === c[0])) && Object.values(seen).some(c => c.length > 1);
        }""")
        assert shared

        # Sorted by the per-query difference, worst first; sorting the other way reverses the order.
        differences = [float(t.rsplit("difference ", 1)[1]) for t in page.locator(".dd-metrics").all_inner_texts()]
        assert differences == sorted(differences)
        page.select_option("#dd-sort", "difference:desc")
        again = [float(t.rsplit("difference ", 1)[1]) for t in page.locator(".dd-metrics").all_inner_texts()]
        assert again == sorted(differences, reverse=True)


def pd_columns(path):
    return path.read_text().splitlines()[0].split(",")


def test_rae_evaluate_json_reports_metrics_comparison_judged_and_calls(scripted_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "--engines", "bm25-title,bm25-full", "--queries", "10", "--json", "--no-mlflow"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["queries"] == 10 and set(data["engines"]) == {"bm25-title", "bm25-full"}
    for engine in data["engines"].values():
        assert set(engine["metrics"]) == {"ndcg@10", "precision_hr@10", "irrelevant@10", "judged@10"}
        assert engine["metrics"]["judged@10"]["value"] == 1.0
    comparison = data["comparisons"][0]
    assert (comparison["a"], comparison["b"]) == ("bm25-title", "bm25-full") and 0 <= comparison["p_value"] <= 1
    assert data["engines"]["bm25-title"]["lm_calls"] > 0 and Path(data["report"], "report.html").exists()

    again = json.loads(CliRunner().invoke(app, [*args[:2], "bm25-title,bm25-full,bm25-title-brand", *args[3:]]).stdout)
    assert [e["lm_calls"] for e in list(again["engines"].values())[:2]] == [0, 0]
    third = again["engines"]["bm25-title-brand"]
    assert third["judgment_calls"] == third["new_pairs_judged"] == third["pairs"] - third["from_store"]


def test_rae_evaluate_logs_to_mlflow(scripted_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["evaluate", "--engines", "bm25-title,bm25-full", "--queries", "3", "--split", "dev", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    import mlflow

    mlflow.set_tracking_uri("sqlite:///mlruns/mlflow.db")
    run = mlflow.get_run(data["mlflow_run_id"])
    assert run.data.params["engines"] == "bm25-title,bm25-full"
    assert "bm25-title.ndcg_at_10" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"report.html", "report.md", "metrics.json"} <= artifacts
    assert data["validity"] is not None and data["validity"]["n_queries"] == 3

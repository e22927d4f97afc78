"""OpenSearch / Elasticsearch and Solr as engines, against local fakes that answer in the real formats; their failures
are one clear line, never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.config import SearchClusterSpec, SolrSpec
from rae.datasets.bundled import esci_us
from rae.datasets.records import Query
from rae.retrieve.base import EngineError
from rae.retrieve.clusters import SearchClusterEngine, SolrEngine
from tests.fake_clusters import FakeClusters

CATALOG = esci_us().catalog


def config(project: Path, url: str, query: str | None = None, extra: str = "") -> Path:
    lines = ['programs_dir = "programs"', 'tracking_uri = "none"', "", "[engines.my-opensearch]", 'kind = "opensearch"', f'url = "{url}/products/_search"']
    if query is not None:
        lines.append(f"query = '{query}'")
    lines += [extra, "", "[engines.my-solr]", 'kind = "solr"', f'url = "{url}/solr/products/select"', 'def_type = "edismax"', 'qf = "title^3"']
    path = project / "rae.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_opensearch_gets_the_filled_template_and_ids_come_from_hits():
    with FakeClusters(CATALOG) as clusters:
        engine = SearchClusterEngine("os", SearchClusterSpec(url=f"{clusters.url}/products/_search"))
        ids = engine.search(Query("q1", 'kettle "red" 1.7l'), 5)
        body = clusters.requests[-1]["body"]
    assert body["size"] == 5 and body["query"]["multi_match"]["query"] == 'kettle "red" 1.7l'  # quotes escaped, then parsed
    assert ids == clusters.matches('kettle "red" 1.7l', 5) and ids


def test_the_id_may_come_from_a_source_field():
    with FakeClusters(CATALOG) as clusters:
        engine = SearchClusterEngine("os", SearchClusterSpec(url=f"{clusters.url}/products/_search", id_field="asin"))
        assert engine.search(Query("q", "kettle"), 3) == clusters.matches("kettle", 3)


def test_solr_gets_q_rows_fl_and_the_parser_and_ids_come_from_docs():
    with FakeClusters(CATALOG) as clusters:
        ids = SolrEngine("solr", SolrSpec(url=f"{clusters.url}/solr/products/select", def_type="edismax", qf="title^3")).search(Query("q", "desk lamp"), 4)
        params = clusters.requests[-1]["params"]
    assert params == {"q": "desk lamp", "rows": "4", "fl": "id", "wt": "json", "defType": "edismax", "qf": "title^3"}
    assert ids == clusters.matches("desk lamp", 4)


def test_basic_credentials_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OS_USER", "rae")
    monkeypatch.setenv("OS_PASS", "s3cret")
    with FakeClusters(CATALOG, password="s3cret") as clusters:
        spec = SearchClusterSpec(url=f"{clusters.url}/products/_search", auth={"username_env": "OS_USER", "password_env": "OS_PASS"})
        assert SearchClusterEngine("os", spec).search(Query("q", "kettle"), 3)
    monkeypatch.delenv("OS_PASS")
    with pytest.raises(EngineError, match=r"\$OS_PASS is not set"):
        SearchClusterEngine("os", spec)


def test_rae_evaluate_compares_a_cluster_with_a_built_in_engine(scripted_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with FakeClusters(CATALOG) as clusters:
        config(tmp_path, clusters.url)
        args = ["evaluate", "--engines", "my-opensearch,my-solr,bm25-full", "--split", "dev", "--queries", "3", "--k", "5", "--json", "--no-mlflow"]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["engines"]) == ["my-opensearch", "my-solr", "bm25-full"]
    assert all(e["metrics"]["judged@5"]["value"] == 1.0 for e in data["engines"].values())


def rae(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rae", *args], capture_output=True, text=True, cwd=project, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("case", "query", "queries", "expected"),
    [
        ("bad template", '{"query": {"match": {"title": {{query}}}}}', None, "the query template is not JSON once filled in"),
        ("bad query", '{"query": {"match": {"title": "{{query}}"}}, "size": {{k}}}', None, "the cluster rejected the query (HTTP 400): [multi_match] malformed query"),
        ("no credentials", None, None, "refused the credentials (HTTP 401)"),
        ("cluster down", None, "boom", "cluster trouble: HTTP 503: index read-only, after 2 tries"),
        ("timeout", None, "slow", "no answer within 0.5s, after 2 tries"),
    ],
)
def test_each_failure_is_one_clear_line_and_no_traceback(tmp_path, case, query, queries, expected):
    password = "s3cret" if case == "no credentials" else None
    with FakeClusters(CATALOG, password=password) as clusters:
        config(tmp_path, clusters.url, query, extra="timeout_s = 0.5\nretries = 1")
        args = ["evaluate", "--engines", "my-opensearch", "--queries", "2", "--no-mlflow"]
        if queries:
            (tmp_path / "queries.txt").write_text(f"{queries} kettle\n")
            args += ["--queries-file", "queries.txt"]
        result = rae(tmp_path, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rae: error: engine my-opensearch") and expected in lines[0], result.stderr


def test_an_opensearch_hit_with_only_fields_gives_its_id():
    """A template with ``"_source": false`` and ``"fields"`` gets hits with ``fields`` only, each value a list."""
    template = '{"_source": false, "fields": ["asin"], "query": {"multi_match": {"query": "{{query}}", "fields": ["title"]}}, "size": {{k}}}'
    with FakeClusters(CATALOG) as clusters:
        engine = SearchClusterEngine("os", SearchClusterSpec(url=f"{clusters.url}/products/_search", query=template, id_field="asin"))
        assert engine.search(Query("q", "kettle"), 3) == clusters.matches("kettle", 3)
        assert clusters.requests[-1]["body"]["_source"] is False


def test_solr_reads_the_id_field_when_fl_asks_for_more():
    with FakeClusters(CATALOG) as clusters:
        engine = SolrEngine("solr", SolrSpec(url=f"{clusters.url}/solr/products/select", fl="id,score"))
        assert engine.search(Query("q", "desk lamp"), 4) == clusters.matches("desk lamp", 4)
        engine = SolrEngine("solr", SolrSpec(url=f"{clusters.url}/solr/products/select", fl="score asin", id_field="asin"))
        assert engine.search(Query("q", "desk lamp"), 4) == clusters.matches("desk lamp", 4)


@pytest.mark.parametrize("text", ["usb-c: 65w charger", "lamp (led", 'kettle "1.7l', "c++ book / guide"])
def test_solr_gets_the_query_text_as_text_never_as_syntax(text):
    with FakeClusters(CATALOG) as clusters:
        ids = SolrEngine("solr", SolrSpec(url=f"{clusters.url}/solr/products/select")).search(Query("q", text), 5)
        sent = clusters.requests[-1]["params"]["q"]
    assert ids == clusters.matches(text, 5)  # every character read as itself
    assert "\\" in sent  # escaped, so that Lucene's parser reads words

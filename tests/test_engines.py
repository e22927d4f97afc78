import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from rae.config import BM25Spec, FusionSpec, HttpSpec, Settings
from rae.datasets.records import Query
from rae.retrieve.build import EngineError, build_engines
from rae.retrieve.trec import TrecRunEngine, write_trec_run


def test_bm25_field_weights_change_the_ranking(tiny):
    specs = {
        "title": BM25Spec(fields={"title": 1.0}),
        "brandy": BM25Spec(fields={"title": 1.0, "brand": 5.0}),
    }
    engines = build_engines(list(specs), specs, tiny.catalog, Path("."))
    assert engines["title"].search(Query("q1", "red kettle"), 3)[0] == "p1"
    assert engines["title"].search(Query("x", "acme"), 3) == []  # no title says acme
    assert len(engines["brandy"].search(Query("x", "acme"), 3)) == 3


def test_reciprocal_rank_fusion_builds_its_parts_once_and_refuses_loops(tiny):
    specs = {**Settings().engine_specs(), "mix": FusionSpec(engines=("bm25-title", "bm25-full"))}
    engines = build_engines(["bm25-title", "mix"], specs, tiny.catalog, Path("."))
    assert engines["mix"].engines[0] is engines["bm25-title"]
    assert engines["mix"].search(Query("q2", "running shoes"), 2)[0] == "p5"
    loop = {"a": FusionSpec(engines=("b",)), "b": FusionSpec(engines=("a",))}
    with pytest.raises(EngineError, match="fuses itself"):
        build_engines(["a"], loop, tiny.catalog, Path("."))
    with pytest.raises(EngineError, match="unknown engine 'nope'"):
        build_engines(["nope"], specs, tiny.catalog, Path("."))


class SearchHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        params = parse_qs(urlparse(self.path).query)
        if params.get("q") == ["boom"]:
            self.send_response(500)
            self.end_headers()
            return
        words = params["q"][0].split()
        hits = [{"_id": f"p{i}", "score": 1.0 / i} for i in range(1, int(params["size"][0]) + 1)]
        body = json.dumps({"hits": {"hits": hits}, "words": words, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def search_server():
    server = HTTPServer(("127.0.0.1", 0), SearchHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_an_http_engine_reads_ids_by_json_path_from_a_real_server(search_server, tiny, monkeypatch):
    monkeypatch.setenv("SEARCH_TOKEN", "Bearer t0k3n")
    spec = HttpSpec(url=search_server + "/search?q={query}&size={k}", ids="$.hits.hits[*]._id", headers={"Authorization": "$SEARCH_TOKEN"})
    engine = build_engines(["shop"], {"shop": spec}, tiny.catalog, Path("."))["shop"]
    assert engine.search(Query("q1", "red kettle & more"), 3) == ["p1", "p2", "p3"]
    with pytest.raises(EngineError, match=r"engine shop: .* answered HTTP 500"):
        engine.search(Query("q", "boom"), 3)


def test_an_unreachable_http_engine_is_one_clear_error(tiny):
    spec = HttpSpec(url="http://127.0.0.1:9/search?q={query}", ids="$[*]", timeout_s=2)
    engine = build_engines(["down"], {"down": spec}, tiny.catalog, Path("."))["down"]
    with pytest.raises(EngineError, match=r"engine down: cannot reach http://127.0.0.1:9/search\?q=kettle"):
        engine.search(Query("q", "kettle"), 3)


def test_trec_runs_go_out_and_come_back_in(tmp_path: Path):
    path = tmp_path / "run.trec"
    write_trec_run(path, {"q1": ["p3", "p1", "p2"], "q2": ["p9"]}, "mine")
    assert path.read_text().splitlines()[0] == "q1 Q0 p3 1 1.000000 mine"
    engine = TrecRunEngine(path)
    assert engine.search(Query("q1", "anything"), 2) == ["p3", "p1"]
    assert engine.search(Query("unknown", "x"), 5) == []


def test_dense_retrieval_finds_by_meaning_and_keeps_its_embeddings(tiny, tmp_path):
    from rae.config import DenseSpec
    from rae.retrieve.build import dense_available

    assert dense_available(), "make install includes the dense extra"
    specs = {"dense": DenseSpec(fields=("title",)), "bm25": BM25Spec(fields={"title": 1.0}), "mix": FusionSpec(engines=("bm25", "dense"))}
    engines = build_engines(["dense", "mix"], specs, tiny.catalog, tmp_path)
    assert engines["dense"].search(Query("x", "trainers for jogging"), 2)[0] == "p5"  # "Trail running shoes", no shared word
    assert engines["mix"].search(Query("q3", "desk lamp"), 1) == ["p9"]
    cached = list((tmp_path / "embeddings").glob("minilm-*.npy"))
    assert len(cached) == 1
    again = build_engines(["dense"], specs, tiny.catalog, tmp_path)["dense"]
    assert (again.vectors == engines["dense"].vectors).all()

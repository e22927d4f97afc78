"""Product images: fetched once from anywhere, described once per image, and judged in the three modes."""

import io
import random
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from bench.fake_server import FakeServer
from rae.annotate.executor import CacheThrough
from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.config import ModelSpec, Settings
from rae.lm.factory import ModelHandle
from rae.programs.annotator import Annotator
from rae.store.images import ImageCache, ImageLimits
from rae.store.schema import ImageRow, JudgmentRow, LMCallRow
from rae.workspace import JudgeModeChoice, Workspace


def png(colour: str, shape: str = "square", size: int = 48) -> bytes:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    box = (8, 8, size - 8, size - 8)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(side: int = 120) -> bytes:
    """A PNG that does not compress: random pixels (about 43 KB)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(0).randbytes(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


class ImageHandler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 - the stdlib's name
        ImageHandler.hits[self.path] = ImageHandler.hits.get(self.path, 0) + 1
        routes = {
            "/red.png": (200, "image/png", png("red")),
            "/page.html": (200, "text/html", b"<html>not an image</html>"),
            "/huge.png": (200, "image/png", noise_png()),
            "/lies.png": (200, "image/png", b"this is no png"),
        }
        status, kind, body = routes.get(self.path, (404, "text/plain", b"gone"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def image_server():
    server = HTTPServer(("127.0.0.1", 0), ImageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ImageHandler.hits = {}
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_images_come_from_urls_paths_and_bytes_and_are_fetched_once(store, tmp_path, image_server):
    cache = ImageCache(store, tmp_path, ImageLimits(max_bytes=5000, timeout_s=2))
    fetched = cache.image(f"{image_server}/red.png")
    assert fetched.ok and fetched.media_type == "image/png" and fetched.path.read_bytes() == png("red")
    again = cache.image(f"{image_server}/red.png")
    assert again.content_hash == fetched.content_hash and ImageHandler.hits["/red.png"] == 1
    local = tmp_path / "red-copy.png"
    local.write_bytes(png("red"))
    assert cache.image(str(local)).content_hash == fetched.content_hash  # same bytes, same image
    assert cache.image(png("blue", "circle")).ok


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/missing.png", "HTTP 404"),
        ("/page.html", "not an image (content type text/html)"),
        ("/huge.png", "larger than 5000 bytes"),
        ("/lies.png", "not a readable PNG, JPEG, GIF or WebP image"),
    ],
)
def test_a_bad_image_is_a_recorded_fact_not_a_crash(store, tmp_path, image_server, path, reason):
    cache = ImageCache(store, tmp_path, ImageLimits(max_bytes=5000, timeout_s=2))
    result = cache.image(image_server + path)
    assert not result.ok and reason in result.reason
    with store.session() as session:
        assert session.get(ImageRow, image_server + path).status == "missing"
    cache.image(image_server + path)
    assert ImageHandler.hits[path] == 1  # a missing image is not fetched again unless asked


def test_offline_a_url_is_missing_with_a_reason(store, tmp_path):
    result = ImageCache(store, tmp_path, ImageLimits(timeout_s=1)).image("http://127.0.0.1:9/kettle.jpg")
    assert not result.ok and result.reason.startswith("cannot fetch (ConnectError")


@pytest.fixture
def pictured(tiny, tmp_path):
    """The tiny catalog with images: p1 and p2 share one picture, p3 has its own, p4's is missing."""
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    red.write_bytes(png("red"))
    blue.write_bytes(png("blue", "circle"))
    images = {"p1": str(red), "p2": str(red), "p3": str(blue), "p4": str(tmp_path / "gone.png")}
    tiny.catalog = {pid: replace(p, image=images.get(pid)) for pid, p in tiny.catalog.items()}
    return tiny


def judge(server: FakeServer, store, data, mode: str, tmp_path: Path):
    handle = ModelHandle(ModelSpec(name="openai/vision-model", api_base=server.url))
    judging = Judging(Annotator(judge_mode=mode), CacheThrough(store), handle, handle.sender(), images=ImageCache(store, tmp_path))
    pairs = [p for p in data.pairs() if p.query_id == "q1"]
    summary = AnnotationRun(judging, data.catalog, workers=2, progress=False).run(pairs)
    with store.session() as session:
        rows = {r.product_id: r for r in session.scalars(select(JudgmentRow).where(JudgmentRow.visual != "x"))}
    return summary, rows


def described_requests(server: FakeServer) -> int:
    return sum("Your output fields are:\n1. `description`" in b["messages"][0]["content"] for b in server.recorded.bodies)


def test_the_image_mode_sends_the_image_itself(pictured, store, tmp_path):
    with FakeServer() as server:
        summary, rows = judge(server, store, pictured, "image", tmp_path)
        assert server.recorded.image_parts == 3  # p1, p2, p3; p4 has no image and is judged from its text
    assert summary.judged == 4 and {p: r.visual for p, r in rows.items()} == {"p1": "image", "p2": "image", "p3": "image", "p4": "none"}


def test_the_description_mode_describes_each_image_once(pictured, store, tmp_path):
    with FakeServer() as server:
        summary, rows = judge(server, store, pictured, "description", tmp_path)
        assert described_requests(server) == 2  # two distinct images among three products
        judged_with = [b for b in server.recorded.bodies if "Image (as described): the description this server writes" in b["messages"][-1]["content"]]
        assert len(judged_with) == 3
    with store.session() as session:
        answers = list(session.scalars(select(LMCallRow.text)))
    assert sum("the description this server writes" in text for text in answers) == 2  # stored once per image
    assert summary.judged == 4 and rows["p2"].visual == "description" and rows["p4"].visual == "none"


def test_the_three_modes_are_three_keys_and_the_text_mode_sends_no_image(pictured, store, tmp_path):
    with FakeServer() as server:
        judge(server, store, pictured, "text", tmp_path)
        assert server.recorded.image_parts == 0 and len(server.recorded.bodies) == 6  # requirements, guidelines, 4 judgments
        for mode in ("description", "image"):
            judge(server, store, pictured, mode, tmp_path)
    with store.session() as session:
        visuals = [r.visual for r in session.scalars(select(JudgmentRow).where(JudgmentRow.product_id == "p1"))]
    assert sorted(visuals) == ["description", "image", "none"]  # p4, imageless, shares one text judgment in all modes


def test_a_model_without_vision_judges_from_text_and_says_so():
    workspace = Workspace(Settings(judge_mode="image"))
    choice = workspace.judge_mode
    assert choice.mode == "text" and "local/smollm2 reads no images" in choice.note
    assert workspace.annotator.judge_mode == "text" and workspace.describe()["judge_mode"] == "text"
    described = Workspace(Settings(judge_mode="description", describer=ModelSpec(name="openai/gpt-4o-mini")))
    assert described.judge_mode == JudgeModeChoice("description") and described.describer.spec.name == "openai/gpt-4o-mini"


def test_ablate_adds_the_visual_variants_for_a_vision_model_and_says_why_not_otherwise():
    from rae.studies.ablation import skipped_variants, standard_variants

    vision = Workspace(Settings(model=ModelSpec(name="openai/gpt-4o-mini")))
    assert {"visual-description", "image"} <= {v.name for v in standard_variants(vision, None, None)}
    embedded = Workspace(Settings())
    assert not {"visual-description", "image"} & {v.name for v in standard_variants(embedded, None, None)}
    assert skipped_variants(embedded) == ["visual-description: local/smollm2 reads no images", "image: local/smollm2 reads no images"]


def test_ablate_runs_the_image_variants_against_a_vision_server(pictured, tmp_path, monkeypatch):
    from rae.studies.ablation import paired_test, run_variant, standard_variants

    with FakeServer() as server:
        settings = Settings(model=ModelSpec(name="openai/vision-model", api_base=server.url), store=f"sqlite:///{tmp_path}/s.db", cache_dir=str(tmp_path))
        workspace = Workspace(settings)
        monkeypatch.setattr(Workspace, "labelled", pictured)
        variants = {v.name: v for v in standard_variants(workspace, None, None)}
        judgments = pictured.select("dev")
        results = [run_variant(workspace, variants[name], judgments, progress=False) for name in ("query-guidelines", "visual-description", "image")]
        assert server.recorded.image_parts > 0
    assert [r.scored.report.n_pairs for r in results] == [8, 8, 8]
    assert paired_test(results[0], results[2]).n_pairs == 8

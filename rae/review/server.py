"""``rae review serve``: a local page where a reviewer labels the queued pairs with one key each.

It serves on 127.0.0.1 only. Each label is saved in the store the moment it is given (closing the browser loses
nothing, and a reload continues at the next pair the reviewer has not labelled), with the reviewer's name and the
time; two reviewers on one queue each label every pair. The page shows what the judge saw and said: the query, its
requirements and guidelines, the product (with its image when one is cached), the LLM's label, confidence and
reasoning, and why the pair was queued.
"""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rae.datasets.records import Pair
from rae.errors import RaeError
from rae.labels import LABELS, Label
from rae.store.human_labels import save_label
from rae.store.images import ImageCache, image_with_hash, recorded_image
from rae.store.review_items import items_of, labelled_items
from rae.store.schema import JudgmentRow, ReviewItemRow
from rae.workspace import Workspace


class ReviewError(RaeError):
    pass


@dataclass
class ReviewService:
    """What the page asks of the store."""

    workspace: Workspace
    queue: str

    def items(self) -> list[ReviewItemRow]:
        return items_of(self.workspace.store, self.queue)

    def labelled_by(self, reviewer: str) -> set[int]:
        return labelled_items(self.workspace.store, reviewer)

    def next_item(self, reviewer: str) -> dict[str, Any]:
        items = self.items()
        done = self.labelled_by(reviewer)
        waiting = [item for item in items if item.id not in done]
        progress = {"labelled": len(items) - len(waiting), "total": len(items), "reviewer": reviewer, "queue": self.queue}
        if not waiting:
            return {"done": True, "progress": progress}
        return {"done": False, "progress": progress, "item": self.view(waiting[0])}

    def view(self, item: ReviewItemRow) -> dict[str, Any]:
        catalog = self.workspace.labelled.catalog
        product = catalog.get(item.product_id)
        guidelines = self.workspace.judging(allow_calls=False).query_guidelines(item.query)
        judgment = self._judgment(Pair(item.query_id, item.query, item.product_id), item.judgment)
        written = guidelines.value.guidelines if guidelines.ok else None
        note = ""
        if guidelines.degenerate is not None:
            note = f"The judge read the generic rubric: this query's {guidelines.degenerate.stage} said nothing ({guidelines.degenerate.reason})."
        elif written is not None and not written.written_for_the_query:
            note = "The judge read the generic rubric."
        return {
            "id": item.id,
            "position": item.position,
            "reason": item.reason,
            "query": item.query,
            "requirements": [r.model_dump() for r in guidelines.value.requirements] if guidelines.ok else [],
            "guidelines": written.by_label() if written is not None else None,
            "guidelines_note": note,
            "product": {
                "id": item.product_id,
                "title": product.title if product else "(not in the catalog)",
                "brand": product.brand if product else "",
                "color": product.color if product else "",
                "category": " > ".join(product.category) if product else "",
                "bullets": product.bullets if product else "",
                "description": product.description if product else "",
                "image": self._image_url(product.image) if product else None,
            },
            "llm": judgment,
            "labels": [str(label) for label in LABELS],
        }

    def save(self, item_id: int, label: str, reviewer: str, note: str) -> dict[str, Any]:
        if not reviewer.strip():
            raise ReviewError("a reviewer name is needed")
        try:
            chosen = Label(label)
        except ValueError:
            raise ReviewError(f"unknown label {label!r}") from None
        item = next((i for i in self.items() if i.id == item_id), None)
        if item is None:
            raise ReviewError(f"no item {item_id} in queue {self.queue}")
        save_label(self.workspace.store, item.query_id, item.query, item.product_id, chosen, reviewer.strip(), note.strip(), item.id)
        return self.next_item(reviewer.strip())

    def _judgment(self, pair: Pair, queued_for: str | None) -> dict[str, Any] | None:
        """What the program, as it is now, says of the pair (from the store); else what the judge said when the pair was
        queued (its record)."""
        row = None
        if pair.product_id in self.workspace.labelled.catalog:
            outcome = self.workspace.stored_judgments([pair])[pair]
            row = outcome.value if outcome.ok else None
        if row is None and queued_for is not None:
            row = self.workspace.store.get(JudgmentRow, queued_for)
        if row is None:
            return None
        # A reasoning that said nothing is stored as none (flag no_reasoning): the page says so, never shows filler.
        return {"label": row.label, "reasoning": row.reasoning, "confidence": row.confidence, "flags": row.flags}

    def _image_url(self, source: str | None) -> str | None:
        if not source:
            return None
        row = recorded_image(self.workspace.store, source)
        return f"/image/{row.content_hash}" if row is not None and row.status == "ok" else None

    def image(self, content_hash: str) -> tuple[bytes, str] | None:
        row = image_with_hash(self.workspace.store, content_hash)
        if row is None:
            return None
        fetched = ImageCache(self.workspace.store, self.workspace.settings.cache_dir).image(row.source)
        return (fetched.path.read_bytes(), fetched.media_type) if fetched.ok else None


def make_handler(service: ReviewService) -> type[BaseHTTPRequestHandler]:
    page = files("rae.review").joinpath("page.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/":
                self._send(200, page, "text/html; charset=utf-8")
            elif url.path == "/api/next":
                self._json(200, service.next_item(query.get("reviewer", "")))
            elif url.path.startswith("/image/"):
                found = service.image(url.path.removeprefix("/image/"))
                self._send(200, *found) if found else self._json(404, {"error": "no such image"})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/api/label":
                self._json(404, {"error": "not found"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                result = service.save(int(body["item"]), str(body["label"]), str(body.get("reviewer", "")), str(body.get("note", "")))
            except (ValueError, KeyError, TypeError) as exc:
                self._json(400, {"error": f"bad request: {exc}"})
                return
            except ReviewError as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, result)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def start_server(service: ReviewService, port: int = 8765) -> ThreadingHTTPServer:
    """The review page on 127.0.0.1 (port 0: any free port), serving on a background thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(service))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

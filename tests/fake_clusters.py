"""A local stand-in for an OpenSearch index and a Solr collection, answering in their real response formats.

OpenSearch: ``POST /products/_search`` with a query DSL body; the answer is ``{"took", "timed_out", "_shards", "hits":
{"total": {"value", "relation"}, "max_score", "hits": [{"_index", "_id", "_score", "_source"}]}}``, and an error is
``{"error": {"root_cause": [...], "type", "reason"}, "status"}``. Solr: ``GET /solr/products/select?q=..&rows=..&fl=..``;
the answer is ``{"responseHeader": {"status", "QTime", "params"}, "response": {"numFound", "start", "docs": [...]}}``,
an error ``{"responseHeader": {...}, "error": {"msg", "code"}}``. Both match products by the words of their titles.
A query text can ask for trouble: ``boom`` answers 503, ``slow`` answers after 2 s; with ``password`` set, a request
without those basic credentials gets 401.
"""

import base64
import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rae.datasets.catalog import Catalog

SPECIAL = set('+-&|!(){}[]^"~*?:\\/')


def lucene_terms(q: str) -> tuple[str, str]:
    """The words of a query as Solr's default (Lucene) parser reads it, or its error: an unescaped ``:`` names a
    field (this collection has none by those names), an unbalanced ``(`` or ``"`` is a syntax error. A backslash
    escapes the next character."""
    words, depth, quoted, escaped = [], 0, False, False
    for ch in q:
        if escaped:
            words.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            field = "".join(words).split()[-1] if "".join(words).split() else ""
            return "", f"undefined field {field}"
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return "", f"org.apache.solr.search.SyntaxError: Cannot parse '{q}': Encountered \" \")\" \")\" "
        elif ch == '"':
            quoted = not quoted
        else:
            words.append(ch if ch not in SPECIAL else " ")
    if depth or quoted:
        return "", f"org.apache.solr.search.SyntaxError: Cannot parse '{q}': Encountered \"<EOF>\""
    return "".join(words), ""


class FakeClusters:
    def __init__(self, catalog: Catalog, password: str | None = None):
        self.catalog, self.password = catalog, password
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeClusters":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()

    def matches(self, text: str, k: int) -> list[str]:
        words = {w for w in text.lower().split() if len(w) > 2}
        scored = sorted(((sum(w in p.title.lower() for w in words), pid) for pid, p in self.catalog.items()), key=lambda s: (-s[0], s[1]))
        return [pid for score, pid in scored[:k] if score > 0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        clusters = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                clusters.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
                if not self._authorised():
                    return
                if urlsplit(self.path).path != "/products/_search":
                    return self._json(404, {"error": {"type": "index_not_found_exception", "reason": "no such index"}, "status": 404})
                try:
                    text = body["query"]["multi_match"]["query"]
                except (KeyError, TypeError):
                    reason = "[multi_match] malformed query, expected [END_OBJECT] but found [FIELD_NAME]"
                    return self._json(400, {"error": {"root_cause": [{"type": "parsing_exception", "reason": reason}], "type": "parsing_exception", "reason": reason}, "status": 400})
                if self._trouble(text):
                    return
                ids = clusters.matches(text, int(body.get("size", 10)))
                hits = [self._hit(body, i, pid) for i, pid in enumerate(ids)]
                self._json(200, {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                                 "hits": {"total": {"value": len(ids), "relation": "eq"}, "max_score": 1.0 if ids else None, "hits": hits}})

            def _hit(self, body: dict[str, Any], rank: int, pid: str) -> dict[str, Any]:
                """A hit as OpenSearch writes it: ``_source`` unless the body says ``"_source": false``, and ``fields``
                (each value a list) for the fields the body asks for."""
                values = {"asin": pid, "title": clusters.catalog[pid].title}
                hit: dict[str, Any] = {"_index": "products", "_id": pid, "_score": 1.0 / (rank + 1)}
                if body.get("_source", True) is not False:
                    hit["_source"] = values
                if body.get("fields"):
                    hit["fields"] = {f: [values[f]] for f in body["fields"] if f in values}
                return hit

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                clusters.requests.append({"path": url.path, "params": params, "authorization": self.headers.get("Authorization")})
                if not self._authorised() or self._trouble(params.get("q", "")):
                    return
                fields = [f for f in re.split(r"[,\s]+", params.get("fl", "")) if f]
                unknown = [f for f in fields if f not in ("id", "asin", "score")]
                if unknown or not fields:
                    return self._solr_error(f"undefined field {','.join(unknown) or '(none)'}")
                text, problem = lucene_terms(params.get("q", ""))
                if problem:
                    return self._solr_error(problem)
                ids = clusters.matches(text, int(params.get("rows", 10)))
                docs = [{f: (1.0 / (i + 1) if f == "score" else pid) for f in fields} for i, pid in enumerate(ids)]
                self._json(200, {"responseHeader": {"status": 0, "QTime": 1, "params": params},
                                 "response": {"numFound": len(ids), "start": 0, "docs": docs}})

            def _solr_error(self, message: str) -> None:
                self._json(400, {"responseHeader": {"status": 400, "QTime": 0}, "error": {"msg": message, "code": 400}})

            def _authorised(self) -> bool:
                if clusters.password is None:
                    return True
                expected = "Basic " + base64.b64encode(f"rae:{clusters.password}".encode()).decode()
                if self.headers.get("Authorization") == expected:
                    return True
                self._json(401, {"error": {"type": "security_exception", "reason": "missing authentication credentials"}, "status": 401})
                return False

            def _trouble(self, text: str) -> bool:
                if "boom" in text:
                    self._json(503, {"error": {"type": "cluster_block_exception", "reason": "index read-only"}, "status": 503})
                    return True
                if "slow" in text:
                    time.sleep(2)
                return False

            def _json(self, status: int, data: Any) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client gave up waiting (the timeout case)
                    self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

"""Any search service that answers an HTTP GET with JSON: the URL is a template, the ids are found by a JSONPath."""

import os
from urllib.parse import quote_plus

import httpx
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath

from rae.config import HttpSpec
from rae.datasets.records import Query
from rae.retrieve.base import EngineError


class HttpEngine:
    def __init__(self, name: str, spec: HttpSpec):
        self.name, self.spec = name, spec
        try:
            self.ids_path = parse_jsonpath(spec.ids)
        except (JsonPathParserError, Exception) as exc:  # jsonpath-ng raises bare Exceptions for some bad paths
            raise EngineError(f"engine {name}: bad JSONPath {spec.ids!r} ({exc})") from None
        # Connection failures are retried by the transport; an answer that is an error is not retried.
        self.client = httpx.Client(timeout=spec.timeout_s, transport=httpx.HTTPTransport(retries=2))

    def search(self, query: Query, k: int) -> list[str]:
        url = self.spec.url.format(query=quote_plus(query.text), k=k, query_id=quote_plus(query.query_id))
        try:
            response = self.client.get(url, headers=self._headers())
            response.raise_for_status()
            data = response.json()
        except httpx.HTTPStatusError as exc:
            raise EngineError(f"engine {self.name}: {url} answered HTTP {exc.response.status_code}") from None
        except httpx.HTTPError as exc:
            raise EngineError(f"engine {self.name}: cannot reach {url} ({type(exc).__name__}: {exc})") from None
        except ValueError:
            raise EngineError(f"engine {self.name}: {url} did not answer with JSON") from None
        ids = [str(match.value) for match in self.ids_path.find(data)]
        return list(dict.fromkeys(ids))[:k]

    def _headers(self) -> dict[str, str]:
        headers = {}
        for name, value in self.spec.headers.items():
            if value.startswith("$"):
                value = os.environ.get(value[1:], "")
                if not value:
                    raise EngineError(f"engine {self.name}: header {name} reads ${self.spec.headers[name][1:]}, which is not set")
            headers[name] = value
        return headers

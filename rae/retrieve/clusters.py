"""Search clusters as engines: OpenSearch and Elasticsearch (a query DSL body POSTed to ``_search``) and Solr
(``/select`` with ``q``, ``rows`` and ``fl``).

A request that times out, loses its connection or gets a 5xx is retried with exponential backoff; whatever is left
after the retries is one line that says which it was. A 4xx is not retried: the query itself is wrong (a bad template,
an unknown field) or the credentials are, and the line quotes the cluster's own reason. Credentials come from the
environment variables the config names; TLS certificates are verified unless the config says not to.
"""

import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from rae.config import ClusterAuth, SearchClusterSpec, SolrSpec
from rae.datasets.records import Query
from rae.retrieve.base import EngineError

BACKOFF_S = 0.5
SOLR_SPECIAL = frozenset('\\+-!():^[]"{}~*?|&;/')


class SearchClusterEngine:
    """OpenSearch or Elasticsearch: the query template filled, POSTed, the ids read from ``hits.hits``."""

    def __init__(self, name: str, spec: SearchClusterSpec):
        self.name, self.spec = name, spec
        self.body(Query("check", "a query"), 10)  # a template that does not make JSON fails now, not mid-evaluation
        self.http = ClusterClient(name, spec.url, spec.auth, spec.verify_tls, spec.timeout_s, spec.retries)

    def body(self, query: Query, k: int) -> dict[str, Any]:
        text = self.spec.query.replace("{{query}}", json.dumps(query.text)[1:-1]).replace("{{k}}", str(k))
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise EngineError(f"engine {self.name}: the query template is not JSON once filled in ({exc.msg} at column {exc.colno})") from None

    def search(self, query: Query, k: int) -> list[str]:
        data = self.http.send(lambda client: client.post(self.spec.url, json=self.body(query, k)))
        try:
            ids = [self.hit_id(hit) for hit in data["hits"]["hits"]]
        except (KeyError, TypeError, IndexError):
            where = f"_source.{self.spec.id_field} or fields.{self.spec.id_field}" if self.spec.id_field else "_id"
            raise EngineError(f"engine {self.name}: the answer has no hits.hits[].{where}") from None
        return list(dict.fromkeys(ids))[:k]

    def hit_id(self, hit: dict[str, Any]) -> str:
        """The product id of a hit: its ``_id``, or the id field from ``_source`` or, for a template that turns
        ``_source`` off, from ``fields`` (where each value is a list)."""
        if not self.spec.id_field:
            return str(hit["_id"])
        if self.spec.id_field in (hit.get("_source") or {}):
            return str(hit["_source"][self.spec.id_field])
        return str(hit["fields"][self.spec.id_field][0])


class SolrEngine:
    """Solr: ``/select`` with the query, the rows wanted and the id field; the ids read from ``response.docs``."""

    def __init__(self, name: str, spec: SolrSpec):
        self.name, self.spec = name, spec
        self.http = ClusterClient(name, spec.url, spec.auth, spec.verify_tls, spec.timeout_s, spec.retries)

    @property
    def id_field(self) -> str:
        return self.spec.document_id_field

    def search(self, query: Query, k: int) -> list[str]:
        params = {"q": self.spec.q.replace("{{query}}", escape_solr(query.text)), "rows": k, "fl": self.spec.fl, "wt": "json"}
        if self.spec.def_type:
            params["defType"] = self.spec.def_type
        if self.spec.qf:
            params["qf"] = self.spec.qf
        data = self.http.send(lambda client: client.get(self.spec.url, params=params))
        try:
            ids = [str(doc[self.id_field]) for doc in data["response"]["docs"]]
        except (KeyError, TypeError):
            raise EngineError(f"engine {self.name}: the answer has no response.docs[].{self.id_field}") from None
        return list(dict.fromkeys(ids))[:k]


def escape_solr(text: str) -> str:
    """The query text with a backslash before each character Solr's query parsers read as syntax (the characters
    SolrJ's ``ClientUtils.escapeQueryChars`` escapes, whitespace excepted so that words stay words)."""
    return "".join(f"\\{ch}" if ch in SOLR_SPECIAL else ch for ch in text)


class ClusterClient:
    """One HTTP client for a cluster: authentication, TLS, timeouts, retries, and errors as one line."""

    def __init__(self, name: str, url: str, auth: ClusterAuth, verify_tls: bool, timeout_s: float, retries: int):
        self.name, self.url, self.retries = name, url, retries
        self.client = httpx.Client(timeout=timeout_s, verify=verify_tls, auth=_basic(name, auth), headers=_api_key(name, auth))

    def send(self, request: Callable[[httpx.Client], httpx.Response]) -> dict[str, Any]:
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                response = request(self.client)
            except httpx.TimeoutException:
                problem = f"no answer within {self.client.timeout.read:g}s"
                continue
            except httpx.HTTPError as exc:
                problem = f"cannot reach it ({type(exc).__name__})"
                continue
            if response.status_code >= 500:
                problem = f"cluster trouble: HTTP {response.status_code}{_reason(response)}"
                continue
            if response.status_code in (401, 403):
                raise EngineError(f"engine {self.name}: {self.url} refused the credentials (HTTP {response.status_code}); check the variables named under auth")
            if response.status_code >= 400:
                raise EngineError(f"engine {self.name}: the cluster rejected the query (HTTP {response.status_code}){_reason(response)}")
            try:
                return response.json()
            except ValueError:
                raise EngineError(f"engine {self.name}: {self.url} did not answer with JSON") from None
        raise EngineError(f"engine {self.name}: {self.url}: {problem}, after {self.retries + 1} tries")


def _reason(response: httpx.Response) -> str:
    """The cluster's own reason for an error (OpenSearch's error.reason, Solr's error.msg), if it gave one."""
    try:
        error = response.json().get("error")
    except ValueError:
        return ""
    if isinstance(error, dict):
        reason = error.get("reason") or error.get("msg") or ""
        return f": {str(reason)[:200]}" if reason else ""
    return f": {str(error)[:200]}" if error else ""


def _basic(name: str, auth: ClusterAuth) -> tuple[str, str] | None:
    if not auth.username_env:
        return None
    return (_secret(name, auth.username_env), _secret(name, auth.password_env or ""))


def _api_key(name: str, auth: ClusterAuth) -> dict[str, str]:
    return {"Authorization": f"ApiKey {_secret(name, auth.api_key_env)}"} if auth.api_key_env else {}


def _secret(name: str, variable: str) -> str:
    value = os.environ.get(variable, "")
    if not value:
        raise EngineError(f"engine {name}: ${variable} is not set (named under auth)")
    return value

"""What Quepid needs of a case beyond its ratings: a try, the search it runs, built from one of rae's engines.

Quepid's case importer (o19s/quepid ``CaseImporter``) makes the case's first try from the file's ``try``, and its
search endpoint from ``try.search_endpoint`` (found by engine, URL and method among the user's, else created), so a
case export has to say which search Quepid queries. rae's OpenSearch, Elasticsearch and Solr engines say it: their URL
and query, rewritten with Quepid's ``#$query##`` where rae's template has ``{{query}}``. An engine that runs inside
rae (BM25, dense, fusion) or answers a bare GET has nothing Quepid can query. Credentials are never written (rae names
the environment variables that hold them; Quepid asks for them on its search endpoint's page).
"""

import json
from typing import Any

from rae.config import SearchClusterSpec, SolrSpec
from rae.errors import RaeError

QUEPID_QUERY = "#$query##"
ROWS = 10  # Quepid's number of rows, and the depth its nDCG@10 scores
QUEPID_ENGINES = {"opensearch": "os", "elasticsearch": "es", "solr": "solr"}


class NoQuepidSearch(RaeError):
    pass


def quepid_try(name: str, spec: Any) -> dict[str, Any]:
    """The ``try`` of a case export for the engine ``name``; NoQuepidSearch for an engine Quepid cannot query."""
    kind = getattr(spec, "kind", type(spec).__name__)
    if kind not in QUEPID_ENGINES:
        raise NoQuepidSearch(f"engine {name} ({kind}) runs where Quepid cannot query it: a Quepid case needs an opensearch, elasticsearch or solr engine")
    label = f"rae: {name}"[:50]  # a try's name is 50 characters at most in Quepid's schema
    endpoint = {"name": label, "search_engine": QUEPID_ENGINES[kind], "endpoint_url": spec.url, "custom_headers": "",
                "basic_auth_credential": None, "proxy_requests": False, "options": None, "mapper_code": None}
    if isinstance(spec, SolrSpec):
        params = {"q": spec.q.replace("{{query}}", QUEPID_QUERY), "defType": spec.def_type, "qf": spec.qf}
        query_params = "&".join(f"{k}={v}" for k, v in params.items() if v)  # as Quepid keeps them: raw, it builds the URL
        return {"name": label, "number_of_rows": ROWS, "escape_query": True, "query_params": query_params,
                "field_spec": field_spec(spec.document_id_field, spec.returned_fields), "curator_variables": [], "search_endpoint": {**endpoint, "api_method": "GET"}}
    cluster: SearchClusterSpec = spec
    body = cluster.query.replace("{{query}}", QUEPID_QUERY).replace("{{k}}", str(ROWS))
    return {"name": label, "number_of_rows": ROWS, "escape_query": True, "query_params": body,
            "field_spec": field_spec(cluster.id_field or "_id", source_fields(body)), "curator_variables": [],
            "search_endpoint": {**endpoint, "api_method": "POST"}}


def field_spec(id_field: str, returned: list[str]) -> str:
    """Quepid's field spec: the id, the title (the first other field the engine returns, else ``title``: Quepid shows
    the doc id where the title field is missing) and the other fields returned, which Quepid shows under the title."""
    others = [f for f in returned if f != id_field and f not in ("*", "score") and "*" not in f]
    return ", ".join([f"id:{id_field}", f"title:{others[0] if others else 'title'}", *others[1:]])


def source_fields(body: str) -> list[str]:
    """The fields an OpenSearch or Elasticsearch request returns (its ``_source`` list or ``includes``), if it names
    them."""
    try:
        source = json.loads(body).get("_source")
    except (ValueError, AttributeError):
        return []
    if isinstance(source, dict):
        source = source.get("includes")
    if isinstance(source, str):
        source = [source]
    return [f for f in source if isinstance(f, str)] if isinstance(source, list) else []

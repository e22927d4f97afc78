"""Rated Ranking Evaluator's ratings file, read as RRE's ``Engine`` reads it (SeaseLtd/rated-ranking-evaluator).

``topics`` hold ``query_groups`` which hold ``queries``; a missing level is the level above (RRE's ``all``), so
Quepid's export (``queries`` at the top) reads too. A query's text is its ``$query`` placeholder (or the
``query_placeholder`` the file names). Its ratings are its own ``relevant_documents``, else its group's, in either
of RRE's two shapes: grades as keys and lists of doc ids as values (``{"3": ["doc1", "doc2"]}``, what Quepid's
importer reads), or doc ids as keys (``{"doc1": {"gain": 3}}``, ``rating`` also accepted, what Quepid exports).
RRE tells the shapes apart by the first value; so does rae. A document not listed is unrated.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rae.datasets.judgment_entries import Entry, JudgmentFile
from rae.datasets.located_json import LocatedJson

JsonPath = tuple[str | int, ...]


def read_rre(ratings: LocatedJson, path: Path) -> JudgmentFile:
    body = ratings.expect(ratings.value, dict, (), "an RRE ratings file (an object with topics or queries)")
    if not any(key in body for key in ("topics", "query_groups", "queries")):
        raise ratings.error((), "not RRE ratings: no topics, query_groups or queries")
    placeholder = str(body.get("query_placeholder") or "$query")
    entries = []
    for where, query, group_documents in _queries(ratings, body):
        placeholders = ratings.expect(query.get("placeholders"), dict, (*where, "placeholders"), "an object of placeholders")
        text = str(placeholders.get(placeholder) or "").strip()
        if not text:
            raise ratings.error((*where, "placeholders"), f"a query needs its {placeholder} placeholder")
        own = query.get("relevant_documents")
        documents, at = (own, (*where, "relevant_documents")) if own is not None else group_documents
        entries += _relevant(ratings, documents, at, text)
    return JudgmentFile(path, entries, None, ratings)


def _queries(ratings: LocatedJson, body: dict[str, Any]) -> Iterator[tuple[JsonPath, dict[str, Any], tuple[Any, JsonPath]]]:
    """Each query with where it is and its group's relevant documents (RRE's fallback when it has none)."""
    for topic_at, topic in _level(ratings, body, (), "topics"):
        for group_at, group in _level(ratings, topic, topic_at, "query_groups"):
            group_documents = (group.get("relevant_documents"), (*group_at, "relevant_documents"))
            for query_at, query in _level(ratings, group, group_at, "queries"):
                if query is not group:
                    yield query_at, query, group_documents


def _level(ratings: LocatedJson, node: dict[str, Any], at: JsonPath, name: str) -> Iterator[tuple[JsonPath, dict[str, Any]]]:
    if name not in node:
        yield at, node
        return
    for i, child in enumerate(ratings.expect(node[name], list, (*at, name), f"a list of {name}")):
        yield (*at, name, i), ratings.expect(child, dict, (*at, name, i), f"an object in {name}")


def _relevant(ratings: LocatedJson, documents: Any, at: JsonPath, query: str) -> list[Entry]:
    if documents is None:
        return []
    documents = ratings.expect(documents, dict, at, "an object of relevant documents")
    if not documents:
        return []
    if isinstance(next(iter(documents.values())), list):  # grades as keys, as RRE decides by the first value
        return [Entry(None, query, str(doc).strip(), str(grade), at=(*at, grade, i))
                for grade, docs in documents.items() for i, doc in enumerate(ratings.expect(docs, list, (*at, grade), "a list of doc ids"))]
    entries = []
    for doc, value in documents.items():
        value = ratings.expect(value, dict, (*at, doc), "an object with a gain (or a list of doc ids under a grade)")
        gain = value.get("gain", value.get("rating"))
        if gain is None:
            raise ratings.error((*at, doc), "a relevant document needs its gain")
        entries.append(Entry(None, query, str(doc).strip(), str(gain), at=(*at, doc)))
    return entries

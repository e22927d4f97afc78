"""Step 4: a search engine, as rae sees it: a query in, the ids of the top k products out, best first."""

from typing import Protocol

from rae.datasets.records import Query
from rae.errors import RaeError


class EngineError(RaeError):
    pass


class SearchEngine(Protocol):
    def search(self, query: Query, k: int) -> list[str]: ...

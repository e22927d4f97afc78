"""Step 1: queries from a search log, counted and sampled by frequency stratum (head, torso, tail).

Reads OpenSearch User Behavior Insights (UBI) logs and plain CSV/JSONL/Parquet logs. A UBI log mixes query records
with events (clicks, typeahead keystrokes) that repeat a query's id; a search is counted once per distinct query id,
and events that carry no query text are skipped. Plain logs have a query column and, optionally, a count column.

The strata split the traffic, not the list of distinct queries: head queries are the most frequent ones that together
make the first third of all searches, torso the next third, tail the rest. A sample draws from each stratum with a
seed, so the same log, size and seed always give the same sample.
"""

import hashlib
import json
import random
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from rae.datasets.readers import DataFileError, read_rows
from rae.datasets.records import Query

STRATA = ("head", "torso", "tail")


def normalize_query(text: str) -> str:
    """Unicode-normalised, lower-cased, with runs of whitespace made one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def query_id_for(text: str) -> str:
    """A stable id for a log query: the same text gets the same id in every log and every run."""
    return "q-" + hashlib.sha1(normalize_query(text).encode()).hexdigest()[:12]


def read_search_log(path: Path | str, query_column: str = "user_query", count_column: str | None = None, fmt: str | None = None) -> Counter[str]:
    """How many searches each normalised query had. Without a count column, each distinct search id counts once.
    ``fmt`` (csv, tsv, jsonl, parquet) insists on a format the file's name and first line do not show."""
    counts: Counter[str] = Counter()
    seen_ids: set[str] = set()
    found_column = False
    for row in read_rows(path, fmt=fmt):
        raw = row.get(query_column) if query_column in row.values else row.get("query")
        if raw is None or not isinstance(raw, str):
            continue
        found_column = True
        query = normalize_query(raw)
        if not query:
            continue
        search_id = row.get("query_id")
        if count_column is None and search_id is not None:
            if search_id in seen_ids:
                continue
            seen_ids.add(str(search_id))
        counts[query] += _count(path, row, count_column)
    if not found_column:
        raise DataFileError(path, None, f"no record has a {query_column!r} (or 'query') text column")
    return counts


def _count(path: Path | str, row, count_column: str | None) -> int:
    if count_column is None:
        return 1
    try:
        return int(row.get(count_column, 1))
    except (TypeError, ValueError):
        raise DataFileError(path, row.line, f"count {row.get(count_column)!r} is not a whole number") from None


def stratify(counts: Counter[str]) -> dict[str, str]:
    """Each query's stratum by cumulative share of searches: head < 1/3 <= torso < 2/3 <= tail."""
    total = sum(counts.values())
    strata: dict[str, str] = {}
    before = 0
    for query, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        share = before / total
        strata[query] = "head" if share < 1 / 3 else "torso" if share < 2 / 3 else "tail"
        before += count
    return strata


@dataclass(frozen=True)
class QuerySample:
    log: str
    seed: int
    size: int
    requested: dict[str, int]
    available: dict[str, int]
    queries: list[Query]

    def save(self, path: Path | str) -> None:
        data = asdict(self)
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    def describe(self) -> str:
        """The seed and, per stratum, how many queries were taken of how many the log has."""
        per_stratum = ", ".join(f"{s} {sum(q.stratum == s for q in self.queries)} of {self.available[s]}" for s in self.available)
        return f"seed {self.seed}; {per_stratum}"

    @classmethod
    def load(cls, path: Path | str) -> "QuerySample":
        try:
            data = json.loads(Path(path).read_text())
            data["queries"] = [Query(**q) for q in data["queries"]]
            return cls(**data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataFileError(path, None, f"not a query sample written by `rae queries sample` ({exc})") from None


def sample_queries(counts: Counter[str], size: int, seed: int = 0, strata_sizes: dict[str, int] | None = None, log: str = "") -> QuerySample:
    """A seeded, frequency-stratified sample; by default a third of ``size`` from each stratum (head gets the rest)."""
    requested = strata_sizes or {"head": size - 2 * (size // 3), "torso": size // 3, "tail": size // 3}
    strata = stratify(counts)
    rng = random.Random(seed)
    queries: list[Query] = []
    available = {}
    for stratum in STRATA:
        members = sorted(q for q, s in strata.items() if s == stratum)
        available[stratum] = len(members)
        chosen = rng.sample(members, min(requested.get(stratum, 0), len(members)))
        queries += [Query(query_id_for(q), q, counts[q], stratum) for q in sorted(chosen, key=lambda q: (-counts[q], q))]
    return QuerySample(log=log, seed=seed, size=len(queries), requested=requested, available=available, queries=queries)

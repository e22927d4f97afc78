import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rae.cli import app
from rae.datasets.bundled import ESCI_QUERY_LOG
from rae.datasets.readers import DataFileError
from rae.datasets.searchlog import QuerySample, normalize_query, query_id_for, read_search_log, sample_queries, stratify


def test_a_ubi_log_counts_each_search_once_and_skips_events_without_a_query(tmp_path: Path):
    log = tmp_path / "ubi.ndjson"
    records = [
        {"query_id": "a", "user_query": "Red  Kettle", "application": "shop"},
        {"query_id": "a", "user_query": "red kettle", "action_name": "click"},  # an event of the same search
        {"query_id": "b", "user_query": "red kettle"},
        {"query_id": "c", "message_type": "QUERY", "message": "re"},  # a typeahead keystroke: no query text
        {"query_id": "d", "user_query": "lamp"},
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert read_search_log(log) == Counter({"red kettle": 2, "lamp": 1})


def test_a_plain_log_may_carry_counts(tmp_path: Path):
    log = tmp_path / "log.csv"
    log.write_text("query,searches\nkettle,10\nlamp,3\n")
    assert read_search_log(log, query_column="query", count_column="searches") == Counter({"kettle": 10, "lamp": 3})
    log.write_text("query,searches\nkettle,many\n")
    with pytest.raises(DataFileError, match=r"log.csv:2: count 'many' is not a whole number"):
        read_search_log(log, query_column="query", count_column="searches")


def test_strata_split_the_traffic_in_thirds():
    counts = Counter({"a": 50, "b": 20, "c": 10, "d": 10, "e": 5, "f": 5})
    assert stratify(counts) == {"a": "head", "b": "torso", "c": "tail", "d": "tail", "e": "tail", "f": "tail"}


def test_a_sample_is_stratified_seeded_and_ids_are_stable():
    counts = read_search_log(ESCI_QUERY_LOG)
    first, again = sample_queries(counts, 9, seed=3), sample_queries(counts, 9, seed=3)
    assert first == again and first.size == 9
    assert Counter(q.stratum for q in first.queries) == {"head": 3, "torso": 3, "tail": 3}
    assert sample_queries(counts, 9, seed=4).queries != first.queries
    assert first.queries[0].query_id == query_id_for(first.queries[0].text.upper())
    assert normalize_query("  Ｗireless   EARBUDS ") == "wireless earbuds"


def test_rae_queries_sample_records_size_seed_and_strata(tmp_path: Path):
    out = tmp_path / "sample.json"
    result = CliRunner().invoke(app, ["queries", "sample", "--size", "6", "--seed", "1", "--out", str(out), "--head", "4", "--tail", "2"])
    assert result.exit_code == 0, result.output
    sample = QuerySample.load(out)
    assert (sample.size, sample.seed) == (6, 1) and sample.requested == {"head": 4, "torso": 0, "tail": 2}
    assert Counter(q.stratum for q in sample.queries) == {"head": 4, "tail": 2}
    assert "wrote 6 queries" in result.output

"""Every loader against hostile files (property-based): a clear error or a documented skip, never a crash with a
stack trace, never a silent wrong count."""

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rae.datasets.catalog import load_catalog
from rae.datasets.judgments import load_judgments
from rae.datasets.readers import DataFileError
from rae.datasets.searchlog import QuerySample, normalize_query, read_search_log

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
texts = st.text(min_size=1, max_size=80).filter(lambda t: t.strip() and "\x00" not in t)
labels = st.sampled_from(["E", "S", "C", "I", "highly_relevant", "irrelevant"])
garbage = st.one_of(
    st.binary(min_size=1, max_size=60),
    st.sampled_from([b"{not json", b"[1, 2]", b"\xff\xfe\xfa", b'{"query_id": 3', b"\x00\x00", b"null"]),
)


def judgment_rows(draw_rows):
    return [{"query_id": q, "query": text, "product_id": p, "esci_label": label} for q, text, p, label in draw_rows]


rows_strategy = st.lists(st.tuples(ids, texts, ids, labels), min_size=1, max_size=20, unique_by=lambda r: (r[0], r[2]))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def as_jsonl(rows) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def as_csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


@FAST
@given(rows=rows_strategy, form=st.sampled_from(["jsonl", "csv", "jsonl.gz"]))
def test_well_formed_files_load_every_row(tmp_path_factory, rows, form):
    rows = judgment_rows(rows)
    data = as_csv(rows) if form == "csv" else as_jsonl(rows)
    path = tmp_path_factory.mktemp("ok") / f"labels.{form}"
    write(path, gzip.compress(data) if form.endswith(".gz") else data)
    loaded = load_judgments(path)
    assert len(loaded) == len(rows)
    assert [(j.query_id, j.product_id) for j in loaded] == [(r["query_id"].strip(), r["product_id"].strip()) for r in rows]


@FAST
@given(rows=rows_strategy, bad=garbage, position=st.integers(min_value=0, max_value=20), form=st.sampled_from(["jsonl", "csv"]))
def test_a_broken_line_anywhere_is_one_clear_error_or_a_row_that_is_really_there(tmp_path_factory, rows, bad, position, form):
    rows = judgment_rows(rows)
    good = as_csv(rows) if form == "csv" else as_jsonl(rows)
    lines = good.split(b"\n")
    at = min(position, len(lines)) if form == "jsonl" else min(max(position, 1), len(lines))
    lines.insert(at, bad.replace(b"\n", b" "))
    path = write(tmp_path_factory.mktemp("bad") / f"labels.{form}", b"\n".join(lines))
    try:
        loaded = load_judgments(path)
    except DataFileError as exc:
        assert str(exc).startswith(str(path))  # names the file (and the line where it can)
        return
    # The garbage happened to be a well-formed record, or blank: then every record in the file was loaded.
    assert len(loaded) in (len(rows), len(rows) + 1)


@FAST
@given(rows=st.lists(st.tuples(ids, texts), min_size=2, max_size=10, unique_by=lambda r: r[0]), dup=st.integers(min_value=0, max_value=9))
def test_a_duplicate_product_id_is_named_with_both_lines(tmp_path_factory, rows, dup):
    products = [{"asin": pid, "title": title} for pid, title in rows]
    products.append(dict(products[dup % len(products)]))
    path = write(tmp_path_factory.mktemp("dup") / "catalog.jsonl", as_jsonl(products))
    with pytest.raises(DataFileError, match=r"already appears on line \d+"):
        load_catalog(path)


@FAST
@given(encoding=st.sampled_from(["latin-1", "utf-16", "cp1252"]), rows=rows_strategy)
def test_a_file_in_another_encoding_is_a_clear_error_or_reads_the_same(tmp_path_factory, encoding, rows):
    rows = judgment_rows(rows)
    text = as_jsonl(rows).decode()
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        return  # these characters do not exist in that encoding
    path = write(tmp_path_factory.mktemp("enc") / "labels.jsonl", data)
    try:
        loaded = load_judgments(path)
    except DataFileError as exc:
        assert "UTF-8" in str(exc) or "JSON" in str(exc) or "expected a JSON object" in str(exc)
        return
    assert len(loaded) == len(rows)  # ASCII-only content reads the same in any of these


def test_a_huge_csv_field_is_a_clear_error_and_a_huge_json_field_loads(tmp_path: Path):
    huge = "x" * 300_000
    csv_path = write(tmp_path / "c.csv", f"asin,title,description\np1,Kettle,{huge}\n".encode())
    with pytest.raises(DataFileError, match=r"c.csv:\d+: malformed CSV \(field larger than field limit"):
        load_catalog(csv_path)
    json_path = write(tmp_path / "c.jsonl", as_jsonl([{"asin": "p1", "title": "Kettle", "description": huge}]))
    assert len(load_catalog(json_path)["p1"].description) == 300_000


@pytest.mark.parametrize(
    ("name", "content"),
    [("labels.csv", b""), ("labels.jsonl", b""), ("labels.jsonl", b"\n\n\n"), ("labels.csv", b"query_id,query,product_id,esci_label\n")],
)
def test_an_empty_file_says_so(tmp_path: Path, name: str, content: bytes):
    with pytest.raises(DataFileError, match="holds no records"):
        load_judgments(write(tmp_path / name, content))


@FAST
@given(
    events=st.lists(
        st.one_of(
            st.fixed_dictionaries({"query_id": ids, "user_query": texts}),
            st.fixed_dictionaries({"query_id": ids, "message": texts}),  # an event without a query: skipped, documented
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_search_log_counts_every_search_once_and_skips_only_events_without_a_query(tmp_path_factory, events):
    path = write(tmp_path_factory.mktemp("log") / "ubi.ndjson", as_jsonl(events))
    with_query = [e for e in events if "user_query" in e and normalize_query(e["user_query"])]
    if not any("user_query" in e for e in events):
        with pytest.raises(DataFileError, match="no record has a 'user_query'"):
            read_search_log(path)
        return
    assert sum(read_search_log(path).values()) == len({e["query_id"] for e in with_query})


@FAST
@given(data=st.binary(max_size=200))
def test_a_query_sample_file_that_is_not_one_is_a_clear_error(tmp_path_factory, data):
    path = write(tmp_path_factory.mktemp("sample") / "queries.json", data)
    with pytest.raises(DataFileError, match="not a query sample"):
        QuerySample.load(path)

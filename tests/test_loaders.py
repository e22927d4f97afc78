import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from rae.config import DataSpec
from rae.datasets.catalog import CatalogColumns, load_catalog
from rae.datasets.judgments import JudgmentColumns, load_judgments
from rae.datasets.labelled_set import IncompleteCatalogError, LabelledSet
from rae.datasets.load import load_labelled_set
from rae.datasets.readers import DataFileError
from rae.labels import ESCI_MAPPING, Label


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


LABELS_CSV = "query_id,query,product_id,esci_label\nq1,red kettle,p1,E\nq1,red kettle,p2,S\nq2,lamp,p3,I\n"


def test_csv_jsonl_and_parquet_give_the_same_judgments(tmp_path: Path):
    csv_path = write(tmp_path / "l.csv", LABELS_CSV)
    rows = [dict(zip(["query_id", "query", "product_id", "esci_label"], line.split(","), strict=True)) for line in LABELS_CSV.splitlines()[1:]]
    jsonl_path = write(tmp_path / "l.jsonl.gz", gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    parquet_path = tmp_path / "l.parquet"
    pd.DataFrame(rows).to_parquet(parquet_path)
    loaded = [load_judgments(p) for p in (csv_path, jsonl_path, parquet_path)]
    assert loaded[0] == loaded[1] == loaded[2]
    assert [j.label for j in loaded[0]] == [Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT]
    assert loaded[0][0].original_label == "E"


def test_column_names_are_configurable(tmp_path: Path):
    path = write(tmp_path / "l.csv", "qid,text,sku,grade\nq1,kettle,p1,highly_relevant\n")
    judgments = load_judgments(path, JudgmentColumns(query_id="qid", query="text", product_id="sku", label="grade"))
    assert judgments[0].product_id == "p1" and judgments[0].label is Label.HIGHLY_RELEVANT


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", "query_id,query,product_id\nq1,kettle,p1\n", r"missing.csv:2: missing column 'esci_label'"),
        ("label.csv", LABELS_CSV + "q3,desk,p4,Z\n", r"label.csv:5: unknown label 'Z'"),
        ("broken.jsonl", '{"query_id": "q1", "query": "k", "product_id": "p1", "esci_label": "E"}\n{"query_id": \n', r"broken.jsonl:2: broken JSON"),
        ("array.jsonl", "[1, 2]\n", r"array.jsonl:1: expected a JSON object"),
        ("empty.csv", "", r"empty.csv: the file holds no records"),
        ("header_only.csv", "query_id,query,product_id,esci_label\n", r"header_only.csv: the file holds no records"),
        ("dup.csv", LABELS_CSV + "q1,red kettle,p1,I\n", r"dup.csv:5: pair .* already labelled on line 2"),
        ("blank.csv", "query_id,query,product_id,esci_label\nq1,,p1,E\n", r"blank.csv:2: empty value in required column 'query'"),
        ("wide.csv", "query_id,query,product_id,esci_label\nq1,k,p1,E,extra\n", r"wide.csv:2: more fields than the header"),
        ("labels.xlsx", "x", r"labels.xlsx: unknown file type"),
    ],
)
def test_a_bad_labels_file_gives_one_error_with_file_and_line(tmp_path: Path, name: str, content: str, message: str):
    with pytest.raises(DataFileError, match=message):
        load_judgments(write(tmp_path / name, content))


def test_an_encoding_error_names_its_line(tmp_path: Path):
    path = write(tmp_path / "latin.csv", LABELS_CSV.encode() + "q9,caf\xe9,p9,E\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"latin.csv:5: not valid UTF-8"):
        load_judgments(path)


def test_a_missing_file_and_a_corrupt_parquet_are_reported(tmp_path: Path):
    with pytest.raises(DataFileError, match="no such file"):
        load_judgments(tmp_path / "nope.csv")
    with pytest.raises(DataFileError, match="not a readable Parquet file"):
        load_judgments(write(tmp_path / "bad.parquet", b"PAR1 not really"))


def test_catalog_reads_lists_and_strings_and_rejects_duplicates(tmp_path: Path):
    path = write(
        tmp_path / "c.jsonl",
        '{"asin": "p1", "title": "Kettle", "category": ["Home", "Kitchen"], "price": 12.5}\n'
        '{"asin": "p2", "title": "Lamp", "category": "Home > Lighting", "bullet_points": ["bright", "warm"]}\n',
    )
    catalog = load_catalog(path)
    assert catalog["p1"].category == ("Home", "Kitchen") and catalog["p1"].price == 12.5
    assert catalog["p2"].category == ("Home", "Lighting") and catalog["p2"].bullets == "bright\nwarm"
    dup = write(tmp_path / "dup.csv", "sku,name\np1,Kettle\np1,Other kettle\n")
    with pytest.raises(DataFileError, match=r"dup.csv:3: product 'p1' already appears on line 2"):
        load_catalog(dup, CatalogColumns(product_id="sku", title="name"))


def test_catalog_price_must_be_a_number(tmp_path: Path):
    path = write(tmp_path / "c.csv", "asin,title,price\np1,Kettle,cheap\n")
    with pytest.raises(DataFileError, match=r"c.csv:2: price 'cheap' is not a number"):
        load_catalog(path)


def test_a_labelled_set_needs_every_judged_product_in_its_catalog(tmp_path: Path):
    judgments = load_judgments(write(tmp_path / "l.csv", LABELS_CSV))
    catalog = load_catalog(write(tmp_path / "c.csv", "asin,title\np1,Kettle\n"))
    with pytest.raises(IncompleteCatalogError, match="2 labelled products are not in the catalog: p2, p3"):
        LabelledSet.build("x", judgments, catalog)


def test_a_teams_own_files_load_through_the_settings(tmp_path: Path):
    write(tmp_path / "l.csv", "qid,q,sku,grade\nq1,kettle,p1,E\nq1,kettle,p2,I\n")
    write(tmp_path / "c.csv", "sku,name\np1,Kettle\np2,Toaster\n")
    spec = DataSpec(
        labels=str(tmp_path / "l.csv"),
        catalog=str(tmp_path / "c.csv"),
        label_columns={"query_id": "qid", "query": "q", "product_id": "sku", "label": "grade"},
        catalog_columns={"product_id": "sku", "title": "name"},
    )
    data = load_labelled_set(spec, {k: str(v) for k, v in ESCI_MAPPING.items()})
    assert data.name == "l" and len(data.judgments) == 2 and data.catalog["p2"].title == "Toaster"
    assert set(data.splits) == {"q1"}

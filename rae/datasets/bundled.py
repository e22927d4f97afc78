"""The ESCI-US sample that ships inside the package (Apache-2.0; see ``data/esci-us/NOTICE``)."""

from pathlib import Path

from rae.datasets.catalog import load_catalog
from rae.datasets.judgments import load_judgments
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.splits import read_frozen_splits

ESCI_DIR = Path(__file__).parent / "data" / "esci-us"
ESCI_JUDGMENTS = ESCI_DIR / "judgments.jsonl"
ESCI_PRODUCTS = ESCI_DIR / "products.jsonl.gz"
ESCI_QUERY_LOG = ESCI_DIR / "ubi_queries.ndjson.gz"
ESCI_SPLITS = ESCI_DIR / "splits.json"


def esci_us() -> LabelledSet:
    """120 queries, 5,311 human ESCI labels, a 6,764-product catalog, and the frozen split."""
    return LabelledSet.build(
        name="esci-us",
        judgments=load_judgments(ESCI_JUDGMENTS),
        catalog=load_catalog(ESCI_PRODUCTS),
        splits=read_frozen_splits(ESCI_SPLITS),
    )

"""The labelled set the settings name: the bundled ESCI-US sample, or a team's own labels and catalog."""

from pathlib import Path

from rae.config import ConfigError, DataSpec
from rae.datasets.bundled import esci_us
from rae.datasets.catalog import CatalogColumns, load_catalog
from rae.datasets.judgments import JudgmentColumns, load_judgments
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.splits import assign_splits
from rae.labels import parse_mapping


def load_labelled_set(spec: DataSpec, label_mapping: dict[str, str]) -> LabelledSet:
    if spec.labels is None:
        if spec.catalog is not None:
            raise ConfigError("data.catalog is set without data.labels: name the labelled file too")
        return esci_us()
    if spec.catalog is None:
        raise ConfigError("data.labels is set without data.catalog: rae needs the products' text to judge them")
    try:
        label_columns = JudgmentColumns(**spec.label_columns)
        catalog_columns = CatalogColumns(**spec.catalog_columns)
    except TypeError as exc:
        raise ConfigError(f"data columns: {exc}") from None
    judgments = load_judgments(spec.labels, label_columns, parse_mapping(label_mapping))
    return LabelledSet.build(
        name=Path(spec.labels).stem,
        judgments=judgments,
        catalog=load_catalog(spec.catalog, catalog_columns),
        splits=assign_splits({j.query_id for j in judgments}, spec.split_seed),
    )

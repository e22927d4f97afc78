"""Which queries an evaluation runs on: a saved sample, a split of the labelled set, or a fresh sample of the log."""

from pathlib import Path

from rae.datasets.bundled import ESCI_QUERY_LOG
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.query_sets import read_query_set
from rae.datasets.records import Query
from rae.datasets.searchlog import read_search_log, sample_queries


def evaluation_queries(
    labelled: LabelledSet, search_log: str | None, n: int, split: str | None = None, queries_file: Path | None = None, seed: int = 0
) -> list[Query]:
    """The first ``n`` queries of ``queries_file`` (a sample of ``rae queries sample``, an SRW query set, a text or CSV
    file), else of the labelled set's
    ``split`` (whose human labels then allow the validity check), else a frequency-stratified sample of ``n`` queries
    of the search log (the bundled UBI log unless the settings name one)."""
    if queries_file is not None:
        return read_query_set(queries_file)[:n]
    if split is not None:
        return labelled.queries(split, n)
    log = Path(search_log or ESCI_QUERY_LOG)
    return sample_queries(read_search_log(log), n, seed, log=str(log)).queries

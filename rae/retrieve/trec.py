"""TREC run files in and out, so that any system's results can be evaluated and rae's can be used elsewhere.

A run file holds ``qid Q0 docid rank score tag`` lines; query ids are rae's (a labelled set's ids, or the ids that
``rae queries sample`` gives log queries).
"""

from pathlib import Path

from ranx import Run

from rae.datasets.readers import DataFileError
from rae.datasets.records import Query


class TrecRunEngine:
    def __init__(self, path: Path | str):
        try:
            run = Run.from_file(str(path), kind="trec")
        except FileNotFoundError:
            raise DataFileError(path, None, "no such file") from None
        except (ValueError, IndexError) as exc:
            raise DataFileError(path, None, f"not a TREC run file (qid Q0 docid rank score tag): {exc}") from None
        self.rankings = {
            query_id: sorted(scores, key=lambda doc: (-scores[doc], doc)) for query_id, scores in run.to_dict().items()
        }

    def search(self, query: Query, k: int) -> list[str]:
        return self.rankings.get(query.query_id, [])[:k]


def write_trec_run(path: Path, rankings: dict[str, list[str]], tag: str) -> None:
    """Rankings as a TREC run file; the score is the inverse rank, so any tool re-sorts them the same way."""
    lines = [
        f"{query_id} Q0 {product_id} {rank} {1.0 / rank:.6f} {tag}"
        for query_id, products in sorted(rankings.items())
        for rank, product_id in enumerate(products, start=1)
    ]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))

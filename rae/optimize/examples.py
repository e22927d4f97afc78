"""Training examples for the judge: what it reads (query, the query's guidelines, product text) and the human label.

The guidelines come through the store, written by the current requirement extractor and guideline writer, so
compiling the judge costs no guideline calls for queries already annotated, and the judge is fitted to the same
guidelines it will read when it runs.
"""

import dspy

from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun
from rae.config import ProductTextSpec
from rae.datasets.catalog import Catalog
from rae.datasets.records import Rating
from rae.programs.product_text import product_text

INPUTS = ("query", "guidelines", "product")


def judge_examples(judging: Judging, judgments: list[Rating], catalog: Catalog, workers: int = 1, progress: bool = True) -> list[dspy.Example]:
    """One example per human judgment whose query has guidelines; a query whose guidelines failed is left out."""
    queries = list(dict.fromkeys(j.query for j in judgments))
    made = AnnotationRun(judging, catalog, workers, progress).query_guidelines(queries)
    guidelines = {q: made[q].value.guidelines for q in queries if made.get(q) is not None and made[q].ok}
    return [
        dspy.Example(
            query=j.query,
            guidelines=guidelines[j.query].render(),
            product=product_text(catalog[j.product_id], judging.text_spec),
            label=str(j.label),
            esci=j.original_label,
            query_id=j.query_id,
            product_id=j.product_id,
        ).with_inputs(*INPUTS)
        for j in judgments
        if j.query in guidelines
    ]


def pipeline_examples(judgments: list[Rating], catalog: Catalog, text_spec: ProductTextSpec) -> list[dspy.Example]:
    """Examples for compiling the whole program (requirements, guidelines and judge): the query and the product only."""
    return [
        dspy.Example(
            query=j.query, product=product_text(catalog[j.product_id], text_spec), label=str(j.label), esci=j.original_label
        ).with_inputs("query", "product")
        for j in judgments
    ]

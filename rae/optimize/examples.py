"""Training examples for the judge: what it reads (query, the query's guidelines, product text) and the human label.

The guidelines come through the store, written by the current requirement extractor and guideline writer, so
compiling the judge costs no guideline calls for queries already annotated, and the judge is fitted to the same
guidelines it will read when it runs.
"""

import dspy
from tqdm import tqdm

from rae.annotate.steps import StoredSteps
from rae.datasets.catalog import Catalog
from rae.datasets.records import HumanJudgment
from rae.programs.product_text import product_text

INPUTS = ("query", "guidelines", "product")


def judge_examples(steps: StoredSteps, judgments: list[HumanJudgment], catalog: Catalog, progress: bool = True) -> list[dspy.Example]:
    """One example per human judgment whose query has guidelines; a query whose guidelines failed is left out."""
    queries = list(dict.fromkeys(j.query for j in judgments))
    guidelines = {q: steps.guidelines(q) for q in tqdm(queries, desc="guidelines", disable=not progress, leave=False)}
    return [
        dspy.Example(
            query=j.query,
            guidelines=guidelines[j.query].value.render(),
            product=product_text(catalog[j.product_id], steps.text_spec),
            label=str(j.label),
            esci=j.original_label,
            query_id=j.query_id,
            product_id=j.product_id,
        ).with_inputs(*INPUTS)
        for j in judgments
        if guidelines[j.query].ok
    ]


def pipeline_examples(judgments: list[HumanJudgment], catalog: Catalog, steps: StoredSteps) -> list[dspy.Example]:
    """Examples for compiling the whole program (requirements, guidelines and judge): the query and the product only."""
    return [
        dspy.Example(
            query=j.query, product=product_text(catalog[j.product_id], steps.text_spec), label=str(j.label), esci=j.original_label
        ).with_inputs("query", "product")
        for j in judgments
    ]

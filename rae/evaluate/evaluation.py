"""Step 7 of the loop: engines retrieve for the same queries, the union of their results is judged, metrics compare them.

The engines are annotated one after another, each through the store, so the LM calls, tokens, money and time an
engine costs are exactly those of the pairs it adds: a second engine that returns mostly the same products costs only
its new ones. Requirements and guidelines are written once per query, for the first engine, and read from the store
for the others.
"""

from dataclasses import dataclass, field

from rae.annotate.run import AnnotationRun
from rae.annotate.spending import SpendingLimit
from rae.annotate.steps import StoredSteps
from rae.annotate.summary import AnnotationSummary
from rae.datasets.catalog import Catalog
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.records import Pair, Query
from rae.datasets.searchlog import normalize_query
from rae.evaluate.compare import Comparison, compare_engines
from rae.evaluate.metrics import EngineMetrics, Gains, condensed, engine_metrics
from rae.evaluate.validity import Validity, validity_check
from rae.labels import Label
from rae.retrieve.rankings import Rankings, Retrieval, pairs_of, union_of_pairs


@dataclass
class EngineRun:
    name: str
    rankings: Rankings
    retrieval_seconds: float
    annotation: AnnotationSummary


@dataclass
class Evaluation:
    k: int
    queries: list[Query]
    engines: list[EngineRun]
    llm_gains: Gains
    metrics: dict[str, EngineMetrics]
    comparisons: list[Comparison]
    validity: Validity | None
    human_gains: Gains = field(default_factory=dict)

    @property
    def main_metric(self) -> str:
        return f"ndcg@{self.k}"

    def worst_queries(self, engine: str, n: int = 5) -> list[tuple[Query, float]]:
        scores = self.metrics[engine].per_query[self.main_metric]
        by_id = {q.query_id: q for q in self.queries}
        return [(by_id[q], float(s)) for q, s in scores.sort_values(kind="stable").head(n).items()]


def evaluate_engines(
    retrievals: list[Retrieval],
    queries: list[Query],
    steps: StoredSteps,
    catalog: Catalog,
    k: int = 10,
    workers: int = 1,
    human_gains: Gains | None = None,
    progress: bool = True,
    limit: SpendingLimit | None = None,
) -> Evaluation:
    """Judge each engine's pairs through the store, one engine after another, then score and compare the engines."""
    runs = []
    for retrieval in retrievals:
        summary = AnnotationRun(steps, catalog, workers, progress, limit).run(pairs_of(queries, retrieval.rankings))
        runs.append(EngineRun(retrieval.name, retrieval.rankings, retrieval.seconds, summary))
    llm_gains = _llm_gains(steps, union_of_pairs(queries, retrievals), catalog)
    metrics = {run.name: engine_metrics(run.rankings, llm_gains, k) for run in runs}
    human_gains = {q: g for q, g in (human_gains or {}).items() if g}
    return Evaluation(
        k=k,
        queries=queries,
        engines=runs,
        llm_gains=llm_gains,
        metrics=metrics,
        comparisons=compare_engines(metrics, f"ndcg@{k}"),
        validity=_validity(runs, llm_gains, human_gains, k),
        human_gains=human_gains,
    )


def human_gains_for(queries: list[Query], labelled: LabelledSet) -> Gains:
    """Human labels for the evaluated queries: matched by query id, or else by normalised query text (a log query)."""
    by_id: Gains = {}
    by_text: dict[str, dict[str, int]] = {}
    for judgment in labelled.judgments:
        by_id.setdefault(judgment.query_id, {})[judgment.product_id] = judgment.label.gain
        by_text.setdefault(normalize_query(judgment.query), {})[judgment.product_id] = judgment.label.gain
    return {q.query_id: by_id.get(q.query_id) or by_text.get(normalize_query(q.text), {}) for q in queries}


def _llm_gains(steps: StoredSteps, pairs: list[Pair], catalog: Catalog) -> Gains:
    gains: Gains = {}
    for pair, outcome in steps.stored_judgments(pairs, catalog).items():
        if outcome.ok:
            gains.setdefault(pair.query_id, {})[pair.product_id] = Label(outcome.value.label).gain
    return gains


def _validity(runs: list[EngineRun], llm_gains: Gains, human_gains: Gains, k: int) -> Validity | None:
    """Both label sets on the same pool: products an engine returned that both humans and the LLM labelled."""
    labelled_queries = [q for q in human_gains if any(q in run.rankings for run in runs)]
    if len(labelled_queries) < 2 or len(runs) < 2:
        return None
    pool = {q: set(human_gains[q]) & set(llm_gains.get(q, {})) for q in labelled_queries}
    human_pool = {q: {p: g for p, g in human_gains[q].items() if p in pool[q]} for q in labelled_queries}
    llm_pool = {q: {p: g for p, g in llm_gains.get(q, {}).items() if p in pool[q]} for q in labelled_queries}
    llm_metrics, human_metrics, human_judged = {}, {}, {}
    for run in runs:
        rankings = {q: run.rankings[q] for q in labelled_queries}
        lists = condensed(rankings, human_pool)
        llm_metrics[run.name] = engine_metrics(lists, llm_pool, k)
        human_metrics[run.name] = engine_metrics(lists, human_pool, k)
        human_judged[run.name] = engine_metrics(rankings, human_gains, k).mean(f"judged@{k}")
    return validity_check(llm_metrics, human_metrics, human_judged, f"ndcg@{k}")

"""Step 7 of the loop: engines retrieve for the same queries, the union of their results is judged, metrics compare them.

The engines are annotated one after another, each through the store, so the LM calls, tokens, money and time an
engine costs are exactly those of the pairs it adds: a second engine that returns mostly the same products costs only
its new ones. Requirements and guidelines are written once per query, for the first engine, and read from the store
for the others.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from rae.annotate.judging import Judging
from rae.annotate.run import AnnotationRun, replayed
from rae.annotate.spending import Budget
from rae.annotate.summary import AnnotationSummary
from rae.datasets.catalog import Catalog
from rae.datasets.labelled_set import LabelledSet
from rae.datasets.records import Pair, Product, Query
from rae.datasets.searchlog import normalize_query
from rae.evaluate.compare import Comparison, compare_engines
from rae.evaluate.corrected import Corrected, corrected_metrics
from rae.evaluate.designs import Draw
from rae.evaluate.metrics import EngineMetrics, Gains, condensed, engine_metrics, metric_names
from rae.evaluate.validity import Validity, validity_check
from rae.labels import Label
from rae.retrieve.rankings import Rankings, Retrieval, pairs_of


@dataclass
class EngineRun:
    name: str
    rankings: Rankings
    retrieval_seconds: float
    annotation: AnnotationSummary


@dataclass(frozen=True)
class JudgedPair:
    """What the report shows of one judgment: the label and the judge's reasoning (None: it gave none worth keeping)."""

    label: str
    reasoning: str | None


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
    corrected: Corrected | None = None  # the judge's metrics corrected by the human-labelled queries (PPI)
    judged: dict[tuple[str, str], JudgedPair] = field(default_factory=dict)  # (query id, product id) -> the judgment
    products: dict[str, Product] = field(default_factory=dict)  # every product an engine returned

    @property
    def main_metric(self) -> str:
        return f"ndcg@{self.k}"

    def unjudged(self) -> dict[str, tuple[int, int]]:
        """Per engine, the products of its top k the judge has no label for, and all the products of its top k."""
        counts = {}
        for run in self.engines:
            pairs = [(query_id, product_id) for query_id, ranking in run.rankings.items() for product_id in ranking[: self.k]]
            counts[run.name] = (sum(p not in self.llm_gains.get(q, {}) for q, p in pairs), len(pairs))
        return counts

    def worst_queries(self, engine: str, n: int = 5) -> list[tuple[Query, float]]:
        scores = self.metrics[engine].per_query[self.main_metric]
        by_id = {q.query_id: q for q in self.queries}
        return [(by_id[q], float(s)) for q, s in scores.sort_values(kind="stable").head(n).items()]


def evaluate_engines(
    retrievals: list[Retrieval],
    queries: list[Query],
    judging: Judging,
    catalog: Catalog,
    k: int = 10,
    workers: int = 1,
    human_gains: Gains | None = None,
    progress: bool = True,
    budget: Budget | None = None,
    drawn: Draw | None = None,
    judge_pairs: Callable[[list[Pair]], AnnotationSummary] | None = None,
    known_gains: Gains | None = None,
) -> Evaluation:
    """Judge each engine's pairs through the store, one engine after another, then score and compare the engines.

    ``drawn`` is the draw of queries for human labelling (``rae review queue --for-evaluation``) whose labels correct
    the judge, ``known_gains`` the human labels given before it. ``judge_pairs`` judges a list of pairs elsewhere (several
    processes, a cluster); by default this process's workers do."""
    runs = []
    for retrieval in retrievals:
        pairs = pairs_of(queries, retrieval.rankings)
        summary = judge_pairs(pairs) if judge_pairs is not None else AnnotationRun(judging, catalog, workers, progress, budget).run(pairs)
        runs.append(EngineRun(retrieval.name, retrieval.rankings, retrieval.seconds, summary))
    return scored(runs, queries, judging, catalog, k, human_gains or {}, drawn, known_gains)


def scored(
    runs: list[EngineRun], queries: list[Query], judging: Judging, catalog: Catalog, k: int, human_gains: Gains,
    drawn: Draw | None = None, known_gains: Gains | None = None,
) -> Evaluation:
    """Metrics, comparisons, validity and the human-corrected estimates of judged rankings, from the store (no call);
    ``known_gains`` are the human labels given before ``drawn`` was made."""
    pairs = list(dict.fromkeys(p for run in runs for p in pairs_of(queries, run.rankings)))
    judged = _judged(judging, pairs, catalog)
    llm_gains: Gains = {}
    for (query_id, product_id), judgment in judged.items():
        llm_gains.setdefault(query_id, {})[product_id] = Label(judgment.label).gain
    metrics = {run.name: engine_metrics(run.rankings, llm_gains, k) for run in runs}
    human_gains = {q: g for q, g in human_gains.items() if g}
    corrected = None
    if human_gains or drawn is not None:
        rankings = {run.name: run.rankings for run in runs}
        corrected = corrected_metrics(rankings, metrics, human_gains, metric_names(k)[:2], f"ndcg@{k}", k, drawn, known_gains, llm_gains)
    return Evaluation(
        k=k,
        queries=queries,
        engines=runs,
        llm_gains=llm_gains,
        metrics=metrics,
        comparisons=compare_engines(metrics, f"ndcg@{k}"),
        validity=_validity(runs, llm_gains, human_gains, k),
        human_gains=human_gains,
        corrected=corrected,
        judged=judged,
        products={p.product_id: catalog[p.product_id] for p in pairs},
    )


def human_gains_for(queries: list[Query], labelled: LabelledSet) -> Gains:
    """Human labels for the evaluated queries: matched by query id, or else by normalised query text (a log query)."""
    by_id: Gains = {}
    by_text: dict[str, dict[str, int]] = {}
    for judgment in labelled.judgments:
        by_id.setdefault(judgment.query_id, {})[judgment.product_id] = judgment.label.gain
        by_text.setdefault(normalize_query(judgment.query), {})[judgment.product_id] = judgment.label.gain
    return {q.query_id: by_id.get(q.query_id) or by_text.get(normalize_query(q.text), {}) for q in queries}


def _judged(judging: Judging, pairs: list[Pair], catalog: Catalog) -> dict[tuple[str, str], JudgedPair]:
    """The judgment of each pair the store has one for, as the program makes it of the stored answers (a parse failure
    has no label: the pair counts as unjudged)."""
    return {
        (pair.query_id, pair.product_id): JudgedPair(outcome.value.label, outcome.value.reasoning)
        for pair, outcome in replayed(judging.lookup(), pairs, catalog).items()
        if outcome.ok
    }


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

"""IR metrics of one engine's rankings under a set of labels, per query and averaged with a 95% CI.

nDCG@k with gains 0/1/2 (irrelevant, acceptable substitute, highly relevant) and precision@k of highly relevant
products come from ranx; the ideal ranking is built from every labelled product of the query, whichever engine
retrieved it (pooling). Beside them: the share of irrelevant products among the judged top k, and judged@k, the
share of the products returned in the top k that have a label at all (an engine that returns fewer than k products
is not penalised here; nDCG and precision already are). An unjudged product counts as not relevant, so a metric is
only as good as its judged@k.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ranx import Qrels, Run, evaluate

from rae.retrieve.rankings import Rankings
from rae.stats import Estimate, mean_with_ci

Gains = dict[str, dict[str, int]]  # query id -> product id -> gain (0, 1, 2)


def metric_names(k: int) -> list[str]:
    return [f"ndcg@{k}", f"precision_hr@{k}", f"irrelevant@{k}", f"judged@{k}"]


@dataclass
class EngineMetrics:
    per_query: pd.DataFrame  # index query id; one column per metric
    summary: dict[str, Estimate]

    def mean(self, metric: str) -> float:
        return self.summary[metric].value


def engine_metrics(rankings: Rankings, gains: Gains, k: int, seed: int = 0) -> EngineMetrics:
    query_ids = sorted(rankings)
    ranx_scores = _ranx_scores(rankings, gains, query_ids, k)
    table = pd.DataFrame(index=pd.Index(query_ids, name="query_id"))
    table[f"ndcg@{k}"] = ranx_scores[f"ndcg@{k}"]
    table[f"precision_hr@{k}"] = ranx_scores[f"precision@{k}-l2"]
    table[f"irrelevant@{k}"] = [_irrelevant_share(rankings[q][:k], gains.get(q, {})) for q in query_ids]
    table[f"judged@{k}"] = [_judged_share(rankings[q][:k], gains.get(q, {})) for q in query_ids]
    summary = {name: mean_with_ci(table[name].to_numpy(dtype=float), seed) for name in table.columns}
    return EngineMetrics(per_query=table, summary=summary)


def condensed(rankings: Rankings, gains: Gains) -> Rankings:
    """Rankings with the unlabelled products removed (Sakai's condensed lists): fair under incomplete labels."""
    return {q: [p for p in products if p in gains.get(q, {})] for q, products in rankings.items()}


def ranx_inputs(rankings: Rankings, gains: Gains, query_ids: list[str]) -> tuple[Qrels, dict[str, dict[str, float]]]:
    """ranx's qrels and run; the run's scores are inverse ranks, so ranx keeps the engine's order."""
    qrels = Qrels({q: dict(gains.get(q, {})) or {"__none__": 0} for q in query_ids})
    run = {q: {p: 1.0 / rank for rank, p in enumerate(rankings[q], start=1)} for q in query_ids}
    return qrels, run


def _ranx_scores(rankings: Rankings, gains: Gains, query_ids: list[str], k: int) -> dict[str, np.ndarray]:
    """ranx's scores of the queries with a list; a query whose list is empty scores 0 (ranx takes no empty run)."""
    names = [f"ndcg@{k}", f"precision@{k}-l2"]
    scores = {name: np.zeros(len(query_ids)) for name in names}
    listed = [i for i, q in enumerate(query_ids) if rankings[q]]
    if not listed:
        return scores
    qrels, run = ranx_inputs(rankings, gains, [query_ids[i] for i in listed])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = evaluate(qrels, Run(run), names, return_mean=False)
    for name in names:
        scores[name][listed] = np.atleast_1d(found[name])
    return scores


def _irrelevant_share(top: list[str], gains: dict[str, int]) -> float:
    judged = [gains[p] for p in top if p in gains]
    return float(np.mean([g == 0 for g in judged])) if judged else float("nan")


def _judged_share(top: list[str], gains: dict[str, int]) -> float:
    return sum(p in gains for p in top) / len(top) if top else float("nan")

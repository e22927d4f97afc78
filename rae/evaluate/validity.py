"""Do LLM labels rank the engines as human labels do?

On the queries that have human labels, both label sets score the same lists, condensed to the products humans
judged, so that only the labels differ; then Kendall's tau between the two orders of engines, and for each pair of
engines whether the verdict agrees.
"""

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from rae.evaluate.metrics import EngineMetrics


@dataclass(frozen=True)
class Verdict:
    a: str
    b: str
    llm_difference: float
    human_difference: float

    @property
    def agrees(self) -> bool:
        return np.sign(self.llm_difference) == np.sign(self.human_difference)


@dataclass(frozen=True)
class Validity:
    metric: str
    n_queries: int
    llm: dict[str, float]  # engine -> mean metric under LLM labels, on the human-judged lists
    human: dict[str, float]  # engine -> mean metric under human labels
    human_judged: dict[str, float]  # engine -> judged@k by humans on the full lists
    kendall_tau: float
    verdicts: list[Verdict]

    @property
    def agreeing_verdicts(self) -> int:
        return sum(v.agrees for v in self.verdicts)


def validity_check(
    llm: dict[str, EngineMetrics], human: dict[str, EngineMetrics], human_judged: dict[str, float], metric: str
) -> Validity:
    names = list(llm)
    llm_means = {n: llm[n].mean(metric) for n in names}
    human_means = {n: human[n].mean(metric) for n in names}
    tau = float("nan")
    if len(names) >= 2:
        tau = float(kendalltau([llm_means[n] for n in names], [human_means[n] for n in names]).statistic)
    verdicts = [
        Verdict(a, b, round(llm_means[b] - llm_means[a], 4), round(human_means[b] - human_means[a], 4))
        for a, b in itertools.combinations(names, 2)
    ]
    n_queries = len(next(iter(human.values())).per_query) if human else 0
    return Validity(metric, n_queries, llm_means, human_means, human_judged, round(tau, 4), verdicts)

"""Compile the program against human labels with one of DSPy's optimizers, within a budget.

- ``labeled``: LabeledFewShot, human-labelled examples as demos; no LM call, a baseline for the others.
- ``random-search``: BootstrapFewShotWithRandomSearch; demos the judge got right on the train split (bootstrapped)
  plus labelled ones, candidate sets scored on dev, the best kept. The default: cheap and robust.
- ``mipro``: MIPROv2; proposes instructions and demo sets and searches them with Optuna's TPE sampler.
- ``gepa``: GEPA; evolves the instructions from textual feedback on the disagreements (``metric.feedback_metric``).
"""

from dataclasses import asdict, dataclass
from typing import Any, Literal

import dspy

from rae.optimize.metric import agreement_metric, feedback_metric

OptimizerName = Literal["labeled", "random-search", "mipro", "gepa"]


@dataclass(frozen=True)
class Budget:
    demos: int = 2  # most bootstrapped demos per predictor
    labeled_demos: int = 2  # most labelled demos per predictor
    candidates: int = 1  # random search: random demo sets beyond zero-shot, labelled-only and unshuffled
    mipro_trials: int = 6
    gepa_metric_calls: int = 150
    threads: int = 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compile_module(
    module: dspy.Module,
    optimizer: OptimizerName,
    trainset: list[dspy.Example],
    valset: list[dspy.Example],
    budget: Budget = Budget(),
) -> dspy.Module:
    """A compiled copy of ``module`` (the judge, or the whole program), fitted on ``trainset`` and selected on ``valset``."""
    if optimizer == "labeled":
        return dspy.LabeledFewShot(k=budget.labeled_demos).compile(module, trainset=trainset)
    if optimizer == "random-search":
        search = dspy.BootstrapFewShotWithRandomSearch(
            metric=agreement_metric,
            max_bootstrapped_demos=budget.demos,
            max_labeled_demos=budget.labeled_demos,
            num_candidate_programs=budget.candidates,
            num_threads=budget.threads,
        )
        return search.compile(module, trainset=trainset, valset=valset)
    if optimizer == "mipro":
        mipro = dspy.MIPROv2(
            metric=agreement_metric,
            auto=None,
            num_candidates=max(2, budget.mipro_trials // 2),
            max_bootstrapped_demos=budget.demos,
            max_labeled_demos=budget.labeled_demos,
            num_threads=budget.threads,
            verbose=False,
        )
        return mipro.compile(
            module, trainset=trainset, valset=valset, num_trials=budget.mipro_trials, minibatch=len(valset) > 35,
            requires_permission_to_run=False,
        )
    if optimizer == "gepa":
        gepa = dspy.GEPA(
            metric=feedback_metric,
            max_metric_calls=budget.gepa_metric_calls,
            reflection_lm=dspy.settings.lm,
            num_threads=budget.threads,
            track_stats=False,
        )
        return gepa.compile(module, trainset=trainset, valset=valset)
    raise ValueError(f"unknown optimizer {optimizer!r}")

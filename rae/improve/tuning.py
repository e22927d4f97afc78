"""``rae tune-engine``: an Optuna study over an engine's declared parameters, scored against the judge, checked on
queries the study never saw.

The first trial is the engine as configured (the start), so every later trial is compared on the same footing. Each
trial retrieves the tuning queries' top k and is scored by a ``Scorer`` (rae.improve.trial_scoring); a trial that
would take the study past ``max_new_pairs`` new pairs, or that the budget stops, ends the study (the trial is pruned:
its score would be incomplete). The study lives in an Optuna storage, so a killed study continues where it stopped,
and its judgments live in the store, so nothing is paid twice. At the end the best trial and the start are compared
on the held-out queries (candidate minus start, the interval as ``rae gate`` computes it): a gain is claimed only
when that interval lies above zero.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from rae.config import EngineSpec
from rae.datasets.records import Query
from rae.improve.gate import DifferenceInterval, difference_interval
from rae.improve.search_space import Parameter, as_toml, with_values
from rae.improve.trial_scoring import Scorer
from rae.retrieve.base import SearchEngine
from rae.retrieve.rankings import Rankings, retrieve


@dataclass(frozen=True)
class TrialRecord:
    number: int
    values: dict[str, float]
    score: float | None  # None: pruned (the budget or the pair cap ended the study)
    low: float | None
    high: float | None
    new_pairs: int
    state: str


@dataclass
class TuningResult:
    engine: str
    metric: str
    parameters: list[Parameter]
    trials: list[TrialRecord]
    start: TrialRecord
    best: TrialRecord
    heldout: DifferenceInterval | None
    heldout_queries: int
    stopped: str = ""  # why the study stopped early, if it did
    heldout_new_pairs: int = 0
    tuned_name: str = ""
    tuned_toml: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def gain_confirmed(self) -> bool:
        """A gain is claimed only when the held-out interval of best minus start lies above zero."""
        return self.best.number != self.start.number and self.heldout is not None and self.heldout.interval.ci_low > 0

    def verdict(self) -> str:
        if self.best.number == self.start.number:
            return "no trial beat the start on the tuning queries: keep the engine as it is"
        if self.heldout is None:
            return "no held-out queries: the gain on the tuning queries is unchecked (give --heldout-queries)"
        i = self.heldout.interval
        seen = f"best minus start on {self.heldout_queries} held-out queries: {i.value:+.4f} ({i.ci_low:+.4f} to {i.ci_high:+.4f}, {self.heldout.basis})"
        if self.gain_confirmed:
            return f"gain confirmed: {seen}"
        return f"no gain confirmed: {seen}; the tuning queries' gain may be noise or the judge's bias, keep the engine as it is"

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "metric": self.metric, "parameters": [vars(p) for p in self.parameters],
            "trials": [vars(t) for t in self.trials], "start": vars(self.start), "best": vars(self.best),
            "heldout": None if self.heldout is None else {"difference": vars(self.heldout.interval), "basis": self.heldout.basis,
                                                          "judge_alone": vars(self.heldout.judge_alone), "queries": self.heldout_queries},
            "gain_confirmed": self.gain_confirmed, "verdict": self.verdict(), "stopped": self.stopped, "heldout_new_pairs": self.heldout_new_pairs,
            "tuned_engine": self.tuned_name, "tuned_toml": self.tuned_toml, "notes": self.notes,
        }

    def markdown(self) -> str:
        names = [p.name for p in self.parameters]
        lines = [f"Tuning {self.engine} on {self.metric}: {len(self.trials)} trials" + (f" (stopped: {self.stopped})" if self.stopped else ""), "",
                 "| trial | " + " | ".join(names) + " | score | 95% interval | new pairs |", "| --- " * (len(names) + 4) + "|"]
        for t in self.trials:
            mark = " (start)" if t.number == self.start.number else " (best)" if t.number == self.best.number else ""
            score = "pruned" if t.score is None else f"{t.score:.4f}"
            interval = "" if t.low is None else f"{t.low:.4f} to {t.high:.4f}"
            lines.append(f"| {t.number}{mark} | " + " | ".join(f"{t.values.get(n, float('nan')):.3g}" for n in names) + f" | {score} | {interval} | {t.new_pairs} |")
        lines += ["", self.verdict(), *self.notes]
        if self.tuned_toml:
            lines += ["", f"The best trial as an engine ({self.tuned_name}), to evaluate or gate:", "", "```toml", self.tuned_toml.rstrip(), "```"]
        return "\n".join(lines)


@dataclass(frozen=True)
class TuningCaps:
    trials: int
    max_new_pairs: int | None = None
    seed: int = 0


def tune(
    engine: str, spec: EngineSpec, parameters: list[Parameter], build: Callable[[EngineSpec], SearchEngine],
    tuning: tuple[list[Query], Scorer], heldout: tuple[list[Query], Scorer] | None, k: int, metric: str,
    study: optuna.Study, caps: TuningCaps,
) -> TuningResult:
    """Run the study to ``caps.trials`` trials in all (a resumed study runs only the rest), then check on held-out queries."""
    queries, scorer = tuning
    measured = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING)
    if not any(t.user_attrs.get("start") and t.state in measured for t in study.trials):  # new, or its start was cut short
        study.enqueue_trial({p.name: p.start for p in parameters}, user_attrs={"start": True})
    stop: dict[str, str] = {}

    def objective(trial: optuna.Trial) -> float:
        values = {p.name: trial.suggest_float(p.name, p.low, p.high) for p in parameters}
        rankings, _ = retrieve(build(with_values(spec, values)), queries, k)
        if caps.max_new_pairs is not None:  # checked before paying: a lookup in the store, so only with a cap
            spent, new = sum(t.user_attrs.get("new_pairs", 0) for t in study.trials), scorer.new_pairs(rankings)
            if spent + new > caps.max_new_pairs:
                stop["why"] = f"trial {trial.number} would judge {new} new pairs, past --max-new-pairs {caps.max_new_pairs} ({spent} judged so far)"
                study.stop()
                raise optuna.TrialPruned(stop["why"])
        result = scorer.score(rankings)
        trial.set_user_attr("new_pairs", result.new_pairs)
        if result.stopped:
            stop["why"] = f"the budget ran out during trial {trial.number}"
            study.stop()
            raise optuna.TrialPruned(stop["why"])
        trial.set_user_attr("low", result.interval.ci_low)
        trial.set_user_attr("high", result.interval.ci_high)
        trial.set_user_attr("basis", result.basis)
        return result.interval.value

    done = sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)
    if done < caps.trials:
        study.optimize(objective, n_trials=caps.trials - done, catch=())
    records = [_record(t) for t in study.trials if t.state != optuna.trial.TrialState.RUNNING]
    complete = [r for r in records if r.score is not None]
    if not complete:
        raise optuna.exceptions.OptunaError(stop.get("why", "no trial completed"))
    start = next((r for r in complete if study.trials[r.number].user_attrs.get("start")), complete[0])
    best = max(complete, key=lambda r: (r.score, -r.number))
    result = TuningResult(engine, metric, parameters, records, start, best, None, 0, stopped=stop.get("why", ""))
    if heldout is not None and best.number != start.number:
        result.heldout, result.heldout_new_pairs = _heldout(spec, build, heldout, k, start, best)
        result.heldout_queries = len(heldout[0])
    if best.number != start.number:
        result.tuned_name = f"{engine}-tuned"
        result.tuned_toml = as_toml(result.tuned_name, with_values(spec, best.values))
    return result


def _heldout(spec: EngineSpec, build: Callable[[EngineSpec], SearchEngine], heldout: tuple[list[Query], Scorer], k: int,
             start: TrialRecord, best: TrialRecord) -> tuple[DifferenceInterval, int]:
    """Best minus start on queries the study never saw, as the gate computes a difference."""
    queries, scorer = heldout
    scores = {}
    for name, record in (("start", start), ("best", best)):
        rankings: Rankings = retrieve(build(with_values(spec, record.values)), queries, k)[0]
        scores[name] = scorer.score(rankings)
    ids = [q.query_id for q in queries]
    judge = np.array([scores["best"].judge.get(q, 0.0) - scores["start"].judge.get(q, 0.0) for q in ids])
    both = [q for q in ids if q in scores["best"].human and q in scores["start"].human]
    human = np.array([scores["best"].human[q] - scores["start"].human[q] for q in both])
    on_human = np.array([scores["best"].judge.get(q, 0.0) - scores["start"].judge.get(q, 0.0) for q in both])
    return difference_interval(judge, human, on_human), scores["start"].new_pairs + scores["best"].new_pairs


def _record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    complete = trial.state == optuna.trial.TrialState.COMPLETE
    return TrialRecord(trial.number, dict(trial.params), trial.value if complete else None, trial.user_attrs.get("low"), trial.user_attrs.get("high"),
                       int(trial.user_attrs.get("new_pairs", 0)), trial.state.name.lower())

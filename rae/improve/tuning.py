"""``rae tune-engine``: an Optuna study over an engine's declared parameters, scored against the judge, checked on
queries the study never saw.

The first trial is the engine as configured (the start), so every later trial is compared on the same footing. Each
trial retrieves the tuning queries' top k and is scored by a ``Scorer`` (rae.improve.trial_scoring); a trial that
would take the study past ``max_new_pairs`` new pairs, or that the budget stops, ends the study (the trial is pruned:
its score would be incomplete). The study lives in an Optuna storage, so a killed study continues where it stopped,
and its judgments live in the store, so nothing is paid twice. At the end the best trial and the start are compared
on the held-out queries (``rae.improve.heldout``): a gain is claimed only when that interval lies above zero and the
humans' own labels, where they exist, do not say otherwise.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from rae.config import EngineSpec
from rae.datasets.records import Query
from rae.improve.heldout import Checked, HeldoutCheck
from rae.improve.search_space import Parameter, as_toml, with_values
from rae.improve.trial_scoring import Scorer
from rae.retrieve.base import SearchEngine
from rae.retrieve.rankings import retrieve


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
    heldout: Checked | None
    stopped: str = ""  # why the study stopped early, if it did
    heldout_new_pairs: int = 0
    tuned_name: str = ""
    tuned_toml: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def gain_confirmed(self) -> bool:
        """A gain is claimed only when the held-out interval of best minus start lies above zero."""
        return self.best.number != self.start.number and self.heldout is not None and self.heldout.confirmed

    def verdict(self) -> str:
        if self.best.number == self.start.number:
            return "no trial beat the start on the tuning queries: keep the engine as it is"
        if self.heldout is None:
            return "no held-out queries: the gain on the tuning queries is unchecked (give --heldout-share)"
        h = self.heldout
        i = h.difference.interval
        seen = f"best minus start on {h.queries} held-out queries: {i.value:+.4f} ({i.ci_low:+.4f} to {i.ci_high:+.4f}, {h.difference.basis})"
        if self.gain_confirmed:
            return f"gain confirmed: {seen}" + (f"; {h.humans.line()}" if h.humans is not None else "")
        why = "; ".join(h.reasons) if h.reasons else "the tuning queries' gain may be noise or the judge's bias"
        return f"no gain confirmed: {seen}; {why}; keep the engine as it is"

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "metric": self.metric, "parameters": [vars(p) for p in self.parameters],
            "trials": [vars(t) for t in self.trials], "start": vars(self.start), "best": vars(self.best),
            "heldout": None if self.heldout is None else {
                "difference": vars(self.heldout.difference.interval), "basis": self.heldout.difference.basis, "design": self.heldout.difference.design,
                "judge_alone": vars(self.heldout.difference.judge_alone), "queries": self.heldout.queries, "human_labelled": self.heldout.difference.human_queries,
                "humans_check": None if self.heldout.humans is None else {**vars(self.heldout.humans.estimate), "queries": self.heldout.humans.queries},
                "reasons": self.heldout.reasons},
            "gain_confirmed": self.gain_confirmed, "verdict": self.verdict(), "stopped": self.stopped, "heldout_new_pairs": self.heldout_new_pairs,
            "tuned_engine": self.tuned_name, "tuned_toml": self.tuned_toml, "notes": self.notes,
        }

    def title(self) -> str:
        return f"Tuning {self.engine} on {self.metric}: {len(self.trials)} trials" + (f" (stopped: {self.stopped})" if self.stopped else "")

    def trial_table(self) -> list[dict[str, str]]:
        """One row a trial, as text: its number (start, best marked), each parameter, score, interval, new pairs."""
        rows = []
        for t in self.trials:
            mark = " (start)" if t.number == self.start.number else " (best)" if t.number == self.best.number else ""
            rows.append({"trial": f"{t.number}{mark}", **{p.name: f"{t.values.get(p.name, float('nan')):.3g}" for p in self.parameters},
                         "score": "pruned" if t.score is None else f"{t.score:.4f}",
                         "95% interval": "" if t.low is None else f"{t.low:.4f} to {t.high:.4f}", "new pairs": str(t.new_pairs)})
        return rows

    def markdown(self) -> str:
        rows = self.trial_table()
        columns = list(rows[0]) if rows else ["trial"]
        lines = [self.title(), "", "| " + " | ".join(columns) + " |", "| --- " * len(columns) + "|"]
        lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
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
    tuning: tuple[list[Query], Scorer], heldout: HeldoutCheck | None, k: int, metric: str,
    study: optuna.Study, caps: TuningCaps,
) -> TuningResult:
    """Run the study to ``caps.trials`` trials in all (a resumed study runs only the rest), then check on held-out queries."""
    queries, scorer = tuning
    measured = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING)
    if not any(t.user_attrs.get("start") and t.state in measured for t in study.trials):  # new, or its start was cut short
        study.enqueue_trial({p.name: p.start for p in parameters}, user_attrs={"start": True})
    stop: dict[str, str] = {}

    def objective(trial: optuna.Trial) -> float:
        values = {p.name: p.on_grid(trial.suggest_float(p.name, p.low, p.high, step=p.step)) for p in parameters}
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
    records = [_record(t, parameters) for t in study.trials if t.state != optuna.trial.TrialState.RUNNING]
    complete = [r for r in records if r.score is not None]
    if not complete:
        raise optuna.exceptions.OptunaError(stop.get("why", "no trial completed"))
    start = next((r for r in complete if study.trials[r.number].user_attrs.get("start")), complete[0])
    best = max(complete, key=lambda r: (r.score, -r.number))
    result = TuningResult(engine, metric, parameters, records, start, best, None, stopped=stop.get("why", ""))
    if heldout is not None and best.number != start.number:
        result.heldout = heldout.check(build(with_values(spec, start.values)), build(with_values(spec, best.values)))
        result.heldout_new_pairs = result.heldout.new_pairs
    if best.number != start.number:
        result.tuned_name = f"{engine}-tuned"
        result.tuned_toml = as_toml(result.tuned_name, with_values(spec, best.values))
    return result


def _record(trial: optuna.trial.FrozenTrial, parameters: list[Parameter]) -> TrialRecord:
    complete = trial.state == optuna.trial.TrialState.COMPLETE
    values = {p.name: p.on_grid(trial.params[p.name]) for p in parameters if p.name in trial.params}
    return TrialRecord(trial.number, values, trial.value if complete else None, trial.user_attrs.get("low"), trial.user_attrs.get("high"),
                       int(trial.user_attrs.get("new_pairs", 0)), trial.state.name.lower())

"""``rae tune-engine`` as one run: the queries split into tuning and held-out ones, the scorers (the configured judge
through the store, or a simulated judge of known quality), the Optuna study in its storage, the report, and the tuned
engine appended to the config for ``rae evaluate`` and ``rae gate`` to use.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from sqlalchemy.exc import SQLAlchemyError

from rae.annotate.run import one_line
from rae.annotate.spending import open_budget
from rae.config import ConfigError, EngineSpec
from rae.datasets.records import Query
from rae.errors import RaeError
from rae.evaluate.evaluation import human_gains_for
from rae.evaluate.metrics import Gains
from rae.improve.heldout import HeldoutCheck, JudgeHeldout, SimulatedHeldout
from rae.improve.search_space import parameters, with_values
from rae.improve.trial_scoring import JudgeScorer, Scorer, SimulatedScorer, truth
from rae.improve.tuning import TuningCaps, TuningResult, tune
from rae.improve.tuning_report import write_tuning_report
from rae.retrieve.base import SearchEngine
from rae.retrieve.build import build_engines
from rae.retrieve.rankings import retrieve
from rae.store.database import safe_url
from rae.studies.ppi_coverage import human_gains, simulated_judge
from rae.workspace import Workspace


class TuningError(RaeError, RuntimeError):
    pass


@dataclass(frozen=True)
class StudyPlan:
    engine: str
    queries: list[Query]
    heldout_share: float
    k: int
    metric: str
    caps: TuningCaps
    study_name: str
    storage: str
    budget_usd: float | None = None
    simulated_kappa: float | None = None  # a simulated judge instead of the configured one
    human_queries: int = 10  # simulated: how many queries of each part humans labelled


def run_engine_study(workspace: Workspace, plan: StudyPlan, progress: bool) -> tuple[TuningResult, Path]:
    specs = workspace.settings.engine_specs()
    if plan.engine not in specs:
        raise ConfigError(f"unknown engine {plan.engine!r} (known: {', '.join(sorted(specs))})")
    spec = specs[plan.engine]
    declared = parameters(plan.engine, spec)
    tuning_queries, heldout_queries = split_queries(plan.queries, plan.heldout_share, plan.caps.seed)
    catalog, cache = workspace.labelled.catalog, Path(workspace.settings.cache_dir)

    def build(trial_spec: EngineSpec) -> SearchEngine:
        return build_engines([plan.engine], {**specs, plan.engine: trial_spec}, catalog, cache)[plan.engine]

    tuning_scorer, heldout_check, notes = _scorers(workspace, plan, tuning_queries, heldout_queries, progress)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(study_name=plan.study_name, storage=plan.storage, load_if_exists=True, direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=plan.caps.seed))
    except SQLAlchemyError as exc:  # Optuna's storage is SQLAlchemy's: a URL it cannot parse, a server it cannot reach
        raise TuningError(f"tune-engine: cannot open the study's storage {safe_url(plan.storage)}: {one_line(exc)}") from None
    try:
        result = tune(plan.engine, spec, declared, build, (tuning_queries, tuning_scorer), heldout_check if heldout_queries else None,
                      plan.k, plan.metric, study, plan.caps)
    except optuna.exceptions.OptunaError as exc:
        raise TuningError(f"tune-engine {plan.engine}: {exc}") from None
    result.notes += notes
    if plan.simulated_kappa is not None:
        result.notes.append(_truth_note(workspace, plan, spec, build, result, heldout_queries))
    directory = Path(workspace.settings.reports_dir) / f"tune-{plan.study_name}"
    return result, write_tuning_report(result, directory)


def split_queries(queries: list[Query], heldout_share: float, seed: int) -> tuple[list[Query], list[Query]]:
    """A seeded split: the study sees the first part, the held-out check the rest."""
    shuffled = list(queries)
    random.Random(seed).shuffle(shuffled)
    cut = len(shuffled) - round(len(shuffled) * heldout_share)
    return shuffled[:cut], shuffled[cut:]


def append_engine(config: Path, toml: str) -> str:
    """Add the tuned engine to the config, unless an engine of that name is there already (then the user decides);
    what was done, as a line for the report."""
    existing = config.read_text() if config.exists() else ""
    header = toml.splitlines()[0]
    if header in existing.splitlines():
        return f"{config} already has {header}: not overwritten (the new one is in the report's engine.toml)"
    config.write_text(existing + ("\n" if existing and not existing.endswith("\n") else "") + "\n# written by rae tune-engine\n" + toml)
    return f"written to {config} as {header}"


def _scorers(workspace: Workspace, plan: StudyPlan, tuning: list[Query], heldout: list[Query], progress: bool) -> tuple[Scorer, HeldoutCheck, list[str]]:
    """The study's scorer and its held-out check: the configured judge, or a simulated one whose human-labelled
    queries are a random sample of the tuning part (the split is shuffled) and a stratified draw of the held-out part."""
    if plan.simulated_kappa is None:
        # one ledger for the whole study, trials and held-out check: every call reserves its most possible cost there
        budget = open_budget(workspace.store, workspace.paid_models(), plan.budget_usd) if plan.budget_usd is not None else None
        held = JudgeHeldout(heldout, JudgeScorer(workspace, heldout, plan.k, plan.metric, budget, progress),
                            human_gains_for(heldout, workspace.human_labels), plan.k, plan.metric)
        return JudgeScorer(workspace, tuning, plan.k, plan.metric, budget, progress), held, []
    humans = workspace.labelled.judgments
    judge = simulated_judge(humans, plan.simulated_kappa, plan.caps.seed)
    truth_gains = human_gains(humans)
    labelled = tuning[: plan.human_queries]
    note = (f"simulated judge at kappa {plan.simulated_kappa:g}; lists kept to the products humans labelled; {plan.human_queries} "
            "queries of each part count as human-labelled (the tuning part's at random, the held-out part's by the stratified design)")
    held = SimulatedHeldout(heldout, labelled, judge, truth_gains, plan.human_queries, plan.k, plan.metric, plan.caps.seed)
    return SimulatedScorer(judge, truth_gains, [q.query_id for q in labelled], plan.k, plan.metric), held, [note]


def _truth_note(workspace: Workspace, plan: StudyPlan, spec: EngineSpec, build: Callable[[EngineSpec], SearchEngine], result: TuningResult,
                heldout: list[Query]) -> str:
    """With a simulated judge the truth is known: the humans' metric of the start and of the best on the held-out queries."""
    gains: Gains = human_gains(workspace.labelled.judgments)
    values = {}
    for name, record in (("start", result.start), ("best", result.best)):
        rankings, _ = retrieve(build(with_values(spec, record.values)), heldout, plan.k)
        values[name] = truth(rankings, gains, plan.k, plan.metric)
    return f"truth (humans' labels, held-out queries): start {values['start']:.4f}, best {values['best']:.4f} ({values['best'] - values['start']:+.4f})"

"""``rae tune``: an Optuna study of the knobs that are not prompts, each trial a compile-and-score.

The knobs: how many labelled demos the judge sees, which product fields it reads and how many characters of them,
and whether it reasons before labelling. A trial compiles the judge with those settings (LabeledFewShot: no LM call)
and scores it by Cohen's kappa on the dev slice, through the store. The study lives in an SQLite file, so a study run
again with the same name continues; a trial killed midway loses nothing, since its judgments are in the store and a
trial with the same settings reads them back.
"""

from dataclasses import dataclass
from typing import Any

import optuna

from rae.config import ProductTextSpec
from rae.optimize.compile import Budget
from rae.optimize.examples import judge_examples
from rae.optimize.run import Slices, compile_program, optimize_program, score_program
from rae.workspace import Workspace

FIELD_SETS = {
    "title": ("title",),
    "title-brand-colour": ("title", "brand", "color"),
    "no-description": ("title", "brand", "color", "category", "bullets"),
    "all": ("title", "brand", "color", "category", "bullets", "description"),
}
BUDGETS = (300, 600, 900, 1500)
DEMOS = (0, 1, 2, 4)


@dataclass(frozen=True)
class TrialSettings:
    demos: int
    fields: str
    budget: int
    chain_of_thought: bool

    @classmethod
    def suggest(cls, trial: optuna.Trial) -> "TrialSettings":
        return cls(
            demos=trial.suggest_categorical("demos", list(DEMOS)),
            fields=trial.suggest_categorical("fields", list(FIELD_SETS)),
            budget=trial.suggest_categorical("budget", list(BUDGETS)),
            chain_of_thought=trial.suggest_categorical("chain_of_thought", [True, False]),
        )

    def workspace(self, base: Workspace) -> Workspace:
        text = ProductTextSpec(fields=FIELD_SETS[self.fields], budget=self.budget)
        return Workspace(base.settings.with_overrides(product_text=text.model_dump(), chain_of_thought=self.chain_of_thought, program="uncompiled"))


def run_study(base: Workspace, study_name: str, storage: str, trials: int, slices: Slices, seed: int = 0, progress: bool = True) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    train = base.labelled.select("train", slices.train_queries, slices.per_query)
    dev = base.labelled.select("dev", slices.dev_queries, slices.per_query)

    def objective(trial: optuna.Trial) -> float:
        settings = TrialSettings.suggest(trial)
        workspace = settings.workspace(base)
        trainset = judge_examples(workspace.judging(), train, workspace.labelled.catalog, workspace.workers, progress)
        program = compile_program(workspace.annotator, "labeled", trainset, [], Budget(labeled_demos=settings.demos))
        report = score_program(workspace, program, dev, progress)
        trial.set_user_attr("weighted_kappa", report.weighted_kappa.value)
        trial.set_user_attr("accuracy", report.accuracy.value)
        trial.set_user_attr("kappa_ci", [report.kappa.ci_low, report.kappa.ci_high])
        return report.kappa.value

    study.optimize(objective, n_trials=trials)
    return study


@dataclass
class TuneResult:
    study: str
    storage: str
    trials: list[dict[str, Any]]
    best: dict[str, Any]
    artifact: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {"study": self.study, "storage": self.storage, "trials": self.trials, "best": self.best}
        return data | ({"artifact": self.artifact} if self.artifact else {})

    def markdown(self) -> str:
        lines = [
            f"study {self.study} ({self.storage}): {len(self.trials)} trials",
            "| trial | demos | fields | budget | chain of thought | dev kappa | state |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in self.trials:
            kappa = "" if row["kappa"] is None else f"{row['kappa']:.3f}"
            lines.append(
                f"| {row['trial']} | {row.get('demos')} | {row.get('fields')} | {row.get('budget')} | {row.get('chain_of_thought')} | {kappa} | {row['state']} |"
            )
        lines.append(f"best: {self.best}" + (f"; saved as {self.artifact}" if self.artifact else ""))
        return "\n".join(lines)


def tune(base: Workspace, study_name: str, storage: str, trials: int, slices: Slices, seed: int, save_as: str | None, progress: bool) -> TuneResult:
    """Add ``trials`` to the study; with ``save_as``, compile the best trial's settings into an artifact of that name."""
    study = run_study(base, study_name, storage, trials, slices, seed, progress)
    rows = [
        {"trial": t.number, **t.params, "kappa": t.value, "weighted_kappa": t.user_attrs.get("weighted_kappa"), "state": t.state.name}
        for t in study.trials
    ]
    result = TuneResult(study_name, storage, rows, {**study.best_trial.params, "kappa": study.best_value})
    if save_as:
        best = TrialSettings(**study.best_trial.params)
        outcome = optimize_program(best.workspace(base), "labeled", Budget(labeled_demos=best.demos), slices, save_as, progress=progress)
        result.artifact = outcome.manifest.artifact_id
    return result

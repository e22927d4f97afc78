"""Several LLM judges on the same pairs (``--judges a,b,c``): each stored under its own key, the panel's label their
majority, and how far every rater (judges and humans) agrees with every other.

A tie goes to the lower label by default, as Quepid's consensus does (``panel_ties = "higher"`` for the other way):
when judges split between irrelevant and highly relevant, a search team would rather under-count relevance than
over-count it. Each judge is the configured model of that name under ``[judges.<name>]``, run with the same program.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rae.annotate.run import AnnotationRun
from rae.annotate.spending import budget_state, open_budget
from rae.annotate.summary import AnnotationSummary
from rae.config import ConfigError
from rae.datasets.records import Pair, Rating
from rae.labels import Label
from rae.studies.agreement import AgreementReport, Compared, agreement_metrics, agreement_report
from rae.studies.human_agreement import RaterAgreement, rater_agreement
from rae.workspace import Workspace


def judge_workspaces(base: Workspace, names: list[str]) -> dict[str, Workspace]:
    known = base.settings.judges
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown judges {unknown}: name them under [judges.<name>] in the config (known: {', '.join(known) or 'none'})")
    return {name: Workspace(base.settings.with_overrides(model=known[name].model_dump())) for name in names}


def annotate_panel(
    judges: dict[str, Workspace], pairs: list[Pair], retry_failed: bool = False, budget_usd: float | None = None, progress: bool = True
) -> dict[str, AnnotationSummary]:
    """Each judge judges every pair through the store (its own keys: its model is part of them), one judge after the
    other. A budget covers the whole panel: one ledger every judge's calls reserve against."""
    first = next(iter(judges.values()))
    models = [model for workspace in judges.values() for model in workspace.paid_models()]
    budget = open_budget(first.store, models, budget_usd) if budget_usd is not None else None
    summaries: dict[str, AnnotationSummary] = {}
    for name, workspace in judges.items():
        run = AnnotationRun(workspace.judging(), workspace.labelled.catalog, workspace.workers, progress, budget, retry_failed=retry_failed)
        summaries[name] = run.run(pairs)
    if budget is not None:
        for summary in summaries.values():
            summary.budget = budget_state(first.store, budget)
    return summaries


def majority(labels: list[Label], ties: str = "lower") -> Label:
    counts = Counter(labels)
    top = max(counts.values())
    tied = sorted((label for label, n in counts.items() if n == top), key=lambda label: label.gain)
    return tied[0] if ties == "lower" else tied[-1]


@dataclass
class PanelAgreement:
    judges: list[str]
    ties: str
    panel: AgreementReport  # the majority label against the humans
    by_judge: dict[str, dict[str, float]]  # each judge against the humans: kappa, accuracy, pairs
    raters: RaterAgreement  # every rater (judges, the labelled set, reviewers, imported raters) against every other
    summaries: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"judges": self.judges, "ties": self.ties, "panel": self.panel.as_dict(), "by_judge": self.by_judge, "raters": self.raters.as_dict()}

    def markdown(self) -> str:
        lines = [f"Panel of {len(self.judges)} judges ({', '.join(self.judges)}): the majority label, ties to the {self.ties} one", "",
                 self.panel.markdown(), "", "| judge | kappa with the humans | accuracy | pairs |", "| --- | --- | --- | --- |"]
        lines += [f"| {name} | {s['kappa']:.3f} | {s['accuracy']:.3f} | {s['pairs']} |" for name, s in self.by_judge.items()]
        return "\n".join([*lines, "", self.raters.markdown()])


def panel_agreement(judges: dict[str, Workspace], humans: list[Rating], other_raters: dict[tuple[str, str], dict[str, Label]], ties: str) -> PanelAgreement:
    by_judge_labels: dict[str, dict[tuple[str, str], Label]] = {}
    for name, workspace in judges.items():
        outcomes = workspace.stored_judgments([h.pair for h in humans])
        by_judge_labels[name] = {(p.query_id, p.product_id): Label(o.value.label) for p, o in outcomes.items() if o.ok}
    compared, by_judge = [], {}
    for human in humans:
        key = (human.query_id, human.product_id)
        given = [labels[key] for labels in by_judge_labels.values() if key in labels]
        compared.append(Compared(human, majority(given, ties) if given else None, "ok" if given else "missing"))
    for name, labels in by_judge_labels.items():
        shared = [(h.label.gain, labels[(h.query_id, h.product_id)].gain) for h in humans if (h.query_id, h.product_id) in labels]
        values = agreement_metrics(np.array([h for h, _ in shared]), np.array([j for _, j in shared])) if shared else [float("nan")] * 4
        by_judge[name] = {"kappa": round(float(values[1]), 4), "accuracy": round(float(values[0]), 4), "pairs": len(shared)}
    raters = {key: dict(by_rater) for key, by_rater in other_raters.items()}
    for human in humans:
        raters.setdefault((human.query_id, human.product_id), {})["original"] = human.label
    for name, labels in by_judge_labels.items():
        for key, label in labels.items():
            raters.setdefault(key, {})[name] = label
    return PanelAgreement(list(judges), ties, agreement_report(compared), by_judge, rater_agreement({k: v for k, v in raters.items() if len(v) >= 2}, "All raters"))


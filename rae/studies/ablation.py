"""Research ablations: program variants judged on the same human-labelled pairs, side by side.

Each variant is a change of settings (generic guidelines, no chain of thought, a compiled artifact, another model);
its judgments go through the store like any others, so a variant already run costs nothing the second time. Every
variant is compared with the first (the baseline) on the pairs both labelled: the difference in Cohen's kappa with a
95% interval from a bootstrap over queries, a p-value from a paired permutation test over queries (the two variants'
labels of a query swapped at random, exact when there are few queries), and McNemar's exact test on which pairs each
got right.
"""

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from rae.config import ConfigError
from rae.datasets.records import Rating
from rae.programs.artifacts import UNCOMPILED
from rae.stats import Estimate, estimates, grouped_permutation_p, query_bootstrap
from rae.studies.agreement import Compared
from rae.studies.scoring import Scored, judge_and_compare
from rae.workspace import Workspace


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class VariantResult:
    variant: Variant
    scored: Scored
    program: str


@dataclass(frozen=True)
class PairedTest:
    baseline: str
    variant: str
    n_pairs: int
    kappa_difference: Estimate  # variant minus baseline
    p_permutation: float
    p_mcnemar: float


@dataclass
class Ablation:
    """Every variant's agreement with the humans, and each one's paired test against the first."""

    split: str
    pairs: int
    model: str
    results: list[VariantResult]
    tests: list[PairedTest]
    not_run: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "pairs": self.pairs,
            "variants": [
                {
                    "name": r.variant.name,
                    "description": r.variant.description,
                    "program": r.program,
                    **{m: vars(getattr(r.scored.report, m)) for m in ("kappa", "weighted_kappa", "accuracy", "alpha")},
                    "n_pairs": r.scored.report.n_pairs,
                    "n_failed": r.scored.report.n_failed,
                    "lm_calls": r.scored.summary.total_calls,
                }
                for r in self.results
            ],
            "tests": [{**vars(t), "kappa_difference": vars(t.kappa_difference)} for t in self.tests],
            "not_run": self.not_run,
        }

    def markdown(self) -> str:
        by_variant = {t.variant: t for t in self.tests}
        lines = [
            f"{self.pairs} human-labelled pairs of the {self.split} split · model {self.model}",
            "",
            "| variant | kappa [95% CI] | weighted kappa | accuracy | pairs (failed) | kappa vs baseline [95% CI] | p (permutation) | p (McNemar) | LM calls |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for result in self.results:
            report, test = result.scored.report, by_variant.get(result.variant.name)
            versus = "baseline" if test is None else test.kappa_difference.signed()
            p_permutation = "" if test is None else f"{test.p_permutation:.3g}"
            p_mcnemar = "" if test is None else f"{test.p_mcnemar:.3g}"
            lines.append(
                f"| {result.variant.name} | {report.kappa} | {report.weighted_kappa.value:.3f} | {report.accuracy.value:.3f} | "
                f"{report.n_pairs} ({report.n_failed}) | {versus} | {p_permutation} | {p_mcnemar} | {result.scored.summary.total_calls} |"
            )
        lines.append("")
        lines += [f"- {r.variant.name}: {r.variant.description}" for r in self.results]
        lines += [f"- not run: {reason}" for reason in self.not_run]
        return "\n".join(lines)

    def mlflow_fields(self) -> tuple[dict[str, Any], dict[str, float | None]]:
        params = {"split": self.split, "pairs": self.pairs, "variants": ",".join(r.variant.name for r in self.results), "model": self.model}
        return params, {f"{r.variant.name}.kappa": r.scored.report.kappa.value for r in self.results}


def standard_variants(workspace: Workspace, compiled: str | None, model_b: str | None) -> list[Variant]:
    variants = [
        Variant("query-guidelines", "uncompiled; query-specific guidelines; chain of thought", {"program": UNCOMPILED}),
        Variant("generic-guidelines", "uncompiled; one generic rubric instead of query guidelines", {"program": UNCOMPILED, "guidelines": "generic"}),
        Variant("no-chain-of-thought", "uncompiled; the judge labels without reasoning first", {"program": UNCOMPILED, "chain_of_thought": False}),
    ]
    if workspace.describer.has_vision:
        variants.append(Variant("visual-description", "uncompiled; the judge also reads a description of the image", {"program": UNCOMPILED, "judge_mode": "description"}))
    if workspace.model.has_vision:
        variants.append(Variant("image", "uncompiled; the judge also sees the image", {"program": UNCOMPILED, "judge_mode": "image"}))
    if compiled:
        variants.append(Variant("compiled", f"the compiled program {compiled}", {"program": compiled}))
    if model_b:
        variants.append(Variant(f"model-b:{model_b}", f"uncompiled, judged by {model_b}", {"program": UNCOMPILED, "model_name": model_b}))
    return variants


def chosen_variants(workspace: Workspace, names: list[str] | None, model_b: str | None) -> list[Variant]:
    """The variants asked for by name (default: every one that applies), in the standard order."""
    compiled = Workspace(workspace.settings.with_overrides(program=None)).manifest
    available = standard_variants(workspace, compiled.artifact_id if compiled else None, model_b)
    if not names:
        return available
    unknown = set(names) - {v.name for v in available}
    if unknown:
        raise ConfigError(f"unknown variants {sorted(unknown)} (available: {', '.join(v.name for v in available)})")
    return [v for v in available if v.name in names]


def skipped_variants(workspace: Workspace) -> list[str]:
    """The variants that do not apply to this model, with the reason: said beside the table, not silently dropped."""
    skipped = []
    if not workspace.describer.has_vision:
        skipped.append(f"visual-description: {workspace.describer.spec.name} reads no images")
    if not workspace.model.has_vision:
        skipped.append(f"image: {workspace.settings.model.name} reads no images")
    return skipped


def ablate(base: Workspace, variants: list[Variant], judgments: list[Rating], split: str, progress: bool = True) -> Ablation:
    results = [run_variant(base, variant, judgments, progress) for variant in variants]
    tests = [paired_test(results[0], other) for other in results[1:]]
    return Ablation(split, len(judgments), base.settings.model.name, results, tests, skipped_variants(base))


def run_variant(base: Workspace, variant: Variant, judgments: list[Rating], progress: bool = True) -> VariantResult:
    workspace = Workspace(base.settings.with_overrides(**variant.overrides))
    scored = judge_and_compare(workspace, judgments, progress=progress)
    program = workspace.manifest.artifact_id if workspace.manifest else UNCOMPILED
    return VariantResult(variant, scored, program)


def paired_test(baseline: VariantResult, other: VariantResult, n_resamples: int = 2000, seed: int = 0) -> PairedTest:
    """Both variants on the pairs both labelled, grouped by query for the bootstrap and the permutations."""
    both = _labelled_by_both(baseline.scored.compared, other.scored.compared)
    human = np.array([a.human.label.gain for a, _ in both])
    mine = np.array([a.llm.gain for a, _ in both])
    yours = np.array([b.llm.gain for _, b in both])
    query_ids = sorted({a.human.query_id for a, _ in both})
    query_of = np.array([query_ids.index(a.human.query_id) for a, _ in both], dtype=int)
    members = [np.flatnonzero(query_of == q) for q in range(len(query_ids))]

    def difference(chosen: np.ndarray) -> np.ndarray:
        rows = np.concatenate([members[int(q)] for q in chosen]) if len(chosen) else np.array([], dtype=int)
        return np.array([_kappa(human[rows], yours[rows]) - _kappa(human[rows], mine[rows])])

    def swapped(swaps: np.ndarray) -> float:
        swap = swaps[query_of]
        return _kappa(human, np.where(swap, mine, yours)) - _kappa(human, np.where(swap, yours, mine))

    if both:
        kappa_difference = estimates(["kappa"], *query_bootstrap(len(members), difference, n_resamples, seed))["kappa"]
        p_permutation = grouped_permutation_p(len(members), swapped, n_resamples, seed)
    else:
        kappa_difference, p_permutation = Estimate(float("nan"), float("nan"), float("nan"), "no pair labelled by both"), float("nan")
    only_baseline = int(np.sum((mine == human) & (yours != human)))
    only_variant = int(np.sum((mine != human) & (yours == human)))
    discordant = only_baseline + only_variant
    p_mcnemar = float(binomtest(only_variant, discordant, 0.5).pvalue) if discordant else 1.0
    return PairedTest(baseline.variant.name, other.variant.name, len(both), kappa_difference, round(p_permutation, 4), round(p_mcnemar, 4))


def _labelled_by_both(baseline: list[Compared], other: list[Compared]) -> list[tuple[Compared, Compared]]:
    theirs = {(c.human.query_id, c.human.product_id): c for c in other if c.status == "ok"}
    return [(c, theirs[key]) for c in baseline if c.status == "ok" and (key := (c.human.query_id, c.human.product_id)) in theirs]


def _kappa(human: np.ndarray, labels: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(human, labels, labels=[0, 1, 2]))

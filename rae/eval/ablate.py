"""Research ablations: program variants judged on the same human-labelled pairs, side by side.

Each variant is a change of settings (generic guidelines, no chain of thought, a compiled artifact, another model);
its judgments go through the store like any others, so a variant already run costs nothing the second time. Every
variant is compared with the first (the baseline) on the pairs both labelled: the difference in Cohen's kappa with a
95% interval and a p-value from a paired bootstrap over queries, and McNemar's exact test on which pairs each got
right.
"""

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import binomtest, bootstrap
from sklearn.metrics import cohen_kappa_score

from rae.datasets.records import HumanJudgment, Pair
from rae.eval.agreement import AgreementReport, Compared, agreement_report, compare
from rae.eval.annotate import AnnotationRun, AnnotationSummary
from rae.eval.estimate import Estimate
from rae.programs.artifacts import UNCOMPILED
from rae.workspace import Workspace


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class VariantResult:
    variant: Variant
    report: AgreementReport
    summary: AnnotationSummary
    compared: list[Compared]
    program: str


@dataclass(frozen=True)
class PairedTest:
    baseline: str
    variant: str
    n_pairs: int
    kappa_difference: Estimate  # variant minus baseline
    p_bootstrap: float
    p_mcnemar: float


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


def skipped_variants(workspace: Workspace) -> list[str]:
    """The variants that do not apply to this model, with the reason: said beside the table, not silently dropped."""
    skipped = []
    if not workspace.describer.has_vision:
        skipped.append(f"visual-description: {workspace.describer.spec.name} reads no images")
    if not workspace.model.has_vision:
        skipped.append(f"image: {workspace.settings.model.name} reads no images")
    return skipped


def run_variant(base: Workspace, variant: Variant, judgments: list[HumanJudgment], progress: bool = True) -> VariantResult:
    workspace = Workspace(base.settings.with_overrides(**variant.overrides))
    catalog = workspace.labelled.catalog
    pairs = [Pair(j.query_id, j.query, j.product_id) for j in judgments]
    with workspace.using_model():
        summary = AnnotationRun(workspace.steps(), catalog, workspace.workers, progress).run(pairs)
    compared = compare(judgments, workspace.steps().stored_judgments(pairs, catalog), catalog)
    program = workspace.manifest.artifact_id if workspace.manifest else UNCOMPILED
    return VariantResult(variant, agreement_report(compared), summary, compared, program)


def paired_test(baseline: VariantResult, other: VariantResult, n_resamples: int = 2000, seed: int = 0) -> PairedTest:
    """Both variants on the pairs both labelled, grouped by query for the bootstrap."""
    theirs = {(c.human.query_id, c.human.product_id): c for c in other.compared if c.status == "ok"}
    both = [(c, theirs[key]) for c in baseline.compared if c.status == "ok" and (key := (c.human.query_id, c.human.product_id)) in theirs]
    human = np.array([a.human.label.gain for a, _ in both])
    mine = np.array([a.llm.gain for a, _ in both])
    yours = np.array([b.llm.gain for _, b in both])
    groups: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(both):
        groups.setdefault(a.human.query_id, []).append(i)
    indices = [np.array(ix) for ix in groups.values()]

    def difference(chosen: np.ndarray) -> float:
        rows = np.concatenate([indices[int(q)] for q in chosen])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cohen_kappa_score(human[rows], yours[rows], labels=[0, 1, 2]) - cohen_kappa_score(human[rows], mine[rows], labels=[0, 1, 2])

    point = difference(np.arange(len(indices))) if both else float("nan")
    low = high = p_boot = float("nan")
    if len(indices) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bootstrap((np.arange(len(indices)),), difference, vectorized=False, n_resamples=n_resamples,
                               method="percentile", rng=np.random.default_rng(seed))
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        draws = result.bootstrap_distribution[~np.isnan(result.bootstrap_distribution)]
        if len(draws):
            p_boot = float(min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0))))
    only_baseline = int(np.sum((mine == human) & (yours != human)))
    only_variant = int(np.sum((mine != human) & (yours == human)))
    discordant = only_baseline + only_variant
    p_mcnemar = float(binomtest(only_variant, discordant, 0.5).pvalue) if discordant else 1.0
    return PairedTest(
        baseline.variant.name,
        other.variant.name,
        len(both),
        Estimate(round(point, 4), round(low, 4), round(high, 4)),
        round(p_boot, 4),
        round(p_mcnemar, 4),
    )


def ablation_table(results: list[VariantResult], tests: list[PairedTest]) -> str:
    by_variant = {t.variant: t for t in tests}
    lines = [
        "| variant | kappa [95% CI] | weighted kappa | accuracy | pairs (failed) | kappa vs baseline [95% CI] | p (bootstrap) | p (McNemar) | LM calls |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        report, test = result.report, by_variant.get(result.variant.name)
        versus = "baseline" if test is None else f"{test.kappa_difference.value:+.3f} [{test.kappa_difference.ci_low:+.3f}, {test.kappa_difference.ci_high:+.3f}]"
        p_boot = "" if test is None else f"{test.p_bootstrap:.3g}"
        p_mcnemar = "" if test is None else f"{test.p_mcnemar:.3g}"
        lines.append(
            f"| {result.variant.name} | {report.kappa} | {report.weighted_kappa.value:.3f} | {report.accuracy.value:.3f} | "
            f"{report.n_pairs} ({report.n_failed}) | {versus} | {p_boot} | {p_mcnemar} | {result.summary.total_calls} |"
        )
    return "\n".join(lines)

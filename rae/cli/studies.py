"""Commands that study the judge: ablate, errors, injection, audit, ppi-check."""

from pathlib import Path
from typing import Annotated

import typer

from rae.cli.options import (
    ConfigOption,
    JsonOption,
    MlflowOption,
    ModelOption,
    PerQueryOption,
    ProgramOption,
    QueriesOption,
    SplitOption,
    StoreOption,
    show,
    track,
    workspace_from,
)
from rae.retrieve.build import build_engines
from rae.retrieve.rankings import retrieve_all
from rae.store.human_labels import latest_ratings
from rae.studies.ablation import ablate as run_ablation
from rae.studies.ablation import chosen_variants
from rae.studies.error_analysis import analyse_errors
from rae.studies.injection import adversarial_judgments, measure_injection
from rae.studies.output_audit import audit_outputs
from rae.studies.partial_pools import PoolStudy, partial_pool_study
from rae.studies.planned_labels import GatePlans, gate_plans
from rae.studies.ppi_coverage import (
    CoverageStudy,
    StudiedJudge,
    calibrated_judge,
    click_gains,
    condensed_lists,
    configured_judge,
    coverage_study,
    human_gains,
    raising_judge,
    simulated_judge,
)


def ablate(
    split: SplitOption = "test",
    queries: QueriesOption = 8,
    per_query: PerQueryOption = 10,
    variants: Annotated[str | None, typer.Option("--variants", help="comma-separated variant names (default: all that apply)")] = None,
    model_b: Annotated[str | None, typer.Option("--model-b", help="add a variant judged by this model")] = None,
    as_json: JsonOption = False,
    mlflow: MlflowOption = True,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Judge the same human-labelled pairs with program variants; kappa with CIs and paired tests against the first."""
    workspace = workspace_from(config, model, store, None)
    names = [v.strip() for v in variants.split(",")] if variants else None
    judgments = workspace.labelled.select(split, queries, per_query)
    ablation = run_ablation(workspace, chosen_variants(workspace, names, model_b), judgments, split, not as_json)
    track(workspace, mlflow, "ablate", f"ablate-{split}", ablation.mlflow_fields())
    show(ablation, as_json)


def errors(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    limit: Annotated[int, typer.Option("--limit", help="analyse at most this many disagreements (hard ones first)")] = 100,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Group the judge's disagreements with the human labels by cause: brand, product type, colour, size, category,
    too strict, misread the query. The cause is named by an LLM with the query's requirements in hand."""
    workspace = workspace_from(config, model, store, None, program=program)
    analysis = analyse_errors(workspace, workspace.labelled.select(split, queries, per_query), limit, not as_json)
    show(analysis, as_json, f"split {split} · {workspace.header()}", split=split, **workspace.describe())


def injection(
    split: SplitOption = "dev",
    pairs: Annotated[int, typer.Option("--pairs", help="how many human-irrelevant pairs to attack")] = 24,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Measure how often instructions hidden in a listing flip the judge's label, with and without rae's defences."""
    workspace = workspace_from(config, model, store, None)
    show(measure_injection(workspace, adversarial_judgments(workspace, split, pairs), split, not as_json), as_json)


def audit(
    all_models: Annotated[bool, typer.Option("--all-models", help="every row of the store, not only this model's")] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Run the output checks over the store: placeholder requirements, guidelines and reasoning, stage by stage."""
    workspace = workspace_from(config, model, store, None)
    show(audit_outputs(workspace.store, None if all_models else workspace.model.identity), as_json)


def ppi_check(
    split: SplitOption = "all",
    queries: QueriesOption = None,
    engines: Annotated[str, typer.Option("--engines", help="comma-separated engine names; the difference is the second minus the first")] = "bm25-title,bm25-full",
    k: Annotated[int, typer.Option("--k")] = 10,
    sizes: Annotated[str, typer.Option("--sizes", help="how many queries humans label, comma-separated")] = "10,20",
    repetitions: Annotated[int, typer.Option("--repetitions")] = 1000,
    kappas: Annotated[str, typer.Option("--kappas", help="simulated judges agreeing with the humans at these kappas")] = "0,0.2,0.4,0.6,0.8",
    calibrated: Annotated[str, typer.Option("--calibrated", help="also simulated judges at these kappas that know which of their labels are guesses")] = "",
    with_judge: Annotated[bool, typer.Option("--judge/--no-judge", help="also the configured model's judgments (judged through the store)")] = True,
    with_clicks: Annotated[bool, typer.Option("--clicks", help="also the stored click judgments (rae judgments from-clicks) as a judge")] = False,
    leaving: Annotated[str | None, typer.Option("--leaving", help="BASELINE,CANDIDATE: also the study where the candidate leaves the baseline's labelled pool")] = None,
    margin: Annotated[float, typer.Option("--margin", help="the gate's margin in the --leaving study")] = 0.06,
    plan_margin: Annotated[float, typer.Option("--plan-margin", help="the margin of the decisive gate whose labels are planned")] = 0.02,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Do the intervals rae prints cover the truth? Coverage and width of the humans-only and corrected intervals under
    each design, on the bundled labelled set, with simulated judges and (by default) the configured model's own
    judgments; with --leaving, also when a candidate's lists leave the labelled pool."""
    workspace = workspace_from(config, model, store, None, program=program)
    labelled = workspace.labelled
    humans = labelled.select(split, queries)  # the population: the split's queries, or its first N (a smaller study)
    names = [e.strip() for e in engines.split(",")]
    pair = [e.strip() for e in leaving.split(",")] if leaving else []
    if leaving is not None and len(pair) != 2:
        raise typer.BadParameter("--leaving takes two engines: BASELINE,CANDIDATE")
    built = build_engines(list(dict.fromkeys(names + pair)), workspace.settings.engine_specs(), labelled.catalog, Path(workspace.settings.cache_dir))
    retrievals = retrieve_all(built, labelled.queries(split, queries), k, labelled.catalog)
    lists = condensed_lists({r.name: r.rankings for r in retrievals}, humans)
    judges = {f"simulated, kappa {kappa}": StudiedJudge(simulated_judge(humans, float(kappa), seed)) for kappa in _numbers(kappas)}
    judges |= {f"simulated, kappa {kappa}, knows its guesses": calibrated_judge(humans, float(kappa), seed) for kappa in _numbers(calibrated)}
    judges["simulated, raises 30% of labels"] = StudiedJudge(raising_judge(humans, 0.3, seed))
    if with_judge:
        judges[f"{workspace.settings.model.name} ({workspace.describe()['program']})"] = configured_judge(workspace, lists, not as_json)
    if with_clicks:
        clicks = latest_ratings(workspace.store, "clicks")
        if not clicks:
            raise typer.BadParameter("no click judgments in the store: run `rae judgments from-clicks LOG` first", param_hint="--clicks")
        judges["clicks (COEC; unshown products unjudged)"] = StudiedJudge(click_gains(clicks))
    sizes_asked = tuple(int(s) for s in sizes.split(",") if s.strip())
    truth = human_gains(humans)
    study = coverage_study({e: lists[e] for e in names}, truth, judges, k, sizes_asked, repetitions, seed)
    plans = gate_plans({e: lists[e] for e in names}, truth, judges, k, plan_margin, seed)
    width = next(iter(plans.rows.values())).width if plans and plans.rows else 0.05  # the decisive gate's width, for the leaving study's plan
    pools = partial_pool_study(lists, truth, judges, pair[0], pair[1], k, sizes_asked, repetitions, margin, seed, width) if pair else None
    show(Studies(study, plans, pools), as_json)


def _numbers(listed: str) -> list[str]:
    return [number.strip() for number in listed.split(",") if number.strip()]


class Studies:
    """The coverage study, the planned labels of a decisive gate and the leaving-pool study, printed together."""

    def __init__(self, coverage: CoverageStudy, plans: GatePlans | None, pools: PoolStudy | None):
        self.coverage, self.plans, self.pools = coverage, plans, pools

    def as_dict(self) -> dict:
        return {**self.coverage.as_dict(), "gate_plans": self.plans.as_dict() if self.plans else None,
                "leaving_pool": self.pools.as_dict() if self.pools else None}

    def markdown(self) -> str:
        return "\n\n".join(part.markdown() for part in (self.coverage, self.plans, self.pools) if part is not None)

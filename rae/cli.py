"""The ``rae`` command line. Each command is a thin layer: read settings, build the workspace, call one step."""

import logging
import sys
import threading
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Literal

import typer

from rae.config import ConfigError, Settings, load_settings
from rae.datasets.bundled import ESCI_QUERY_LOG
from rae.datasets.judgments import JudgmentColumns
from rae.datasets.readers import read_rows
from rae.datasets.records import Pair, Query
from rae.datasets.searchlog import QuerySample, read_search_log, sample_queries
from rae.errors import RaeError
from rae.eval.ablate import ablation_table, paired_test, run_variant, skipped_variants, standard_variants
from rae.eval.agreement import agreement_report, compare, human_agreement, to_markdown
from rae.eval.annotate import AnnotationRun
from rae.eval.dry_run import estimate_cost
from rae.eval.engines import build_engines, dense_available
from rae.eval.errors import analyse_errors
from rae.eval.evaluate import evaluate_engines, human_gains_for, pairs_of, retrieve
from rae.eval.injection import adversarial_judgments, measure_injection
from rae.eval.report import evaluation_json, markdown, write_report
from rae.eval.spending import SpendingLimit
from rae.eval.tracking import log_run
from rae.jsonout import dumps
from rae.optimize.compile import Budget, OptimizerName
from rae.optimize.run import Slices, optimize_program
from rae.optimize.tune import TrialSettings, run_study
from rae.programs.artifacts import UNCOMPILED, list_artifacts
from rae.review.labels import human_pairs, latest_reviews
from rae.review.queue import SOURCES, build_queue
from rae.review.server import ReviewService, start_server
from rae.secrets import redact, redacting_log_handler
from rae.workspace import Workspace

app = typer.Typer(
    help="rae: LLM relevance judgments for e-commerce search, fitted to your human labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
queries_app = typer.Typer(help="Queries from a search log.", no_args_is_help=True)
app.add_typer(queries_app, name="queries")
programs_app = typer.Typer(help="Compiled programs (versioned artifacts).", no_args_is_help=True)
app.add_typer(programs_app, name="programs")
review_app = typer.Typer(help="Humans review the hard cases; their labels flow back.", no_args_is_help=True)
app.add_typer(review_app, name="review")
DEFAULT_ENGINES = ("bm25-title", "bm25-title-brand", "bm25-full")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default: ./rae.toml if present)")]
ModelOption = Annotated[str | None, typer.Option("--model", help="LiteLLM model string, or local/smollm2 (the embedded default)")]
StoreOption = Annotated[str | None, typer.Option("--store", help="database URL (default sqlite:///.rae/rae.db)")]
JudgeModeOption = Annotated[
    Literal["text", "description", "image"] | None,
    typer.Option("--judge-mode", help="the judge reads the text; text and a visual description; or text and the image"),
]
GuidelinesOption = Annotated[
    Literal["query", "generic"] | None, typer.Option("--guidelines", help="query-specific guidelines, or the generic rubric")
]
ProgramOption = Annotated[
    str | None, typer.Option("--program", help="compiled program to use (see `rae programs list`), or 'uncompiled'; default the newest for the model")
]
SplitOption = Annotated[str, typer.Option("--split", help="train, dev, test or all")]
QueriesOption = Annotated[int | None, typer.Option("--queries", help="only the first N queries of the split")]
PerQueryOption = Annotated[int | None, typer.Option("--per-query", help="at most N pairs per query (a fixed sample)")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="estimate LM calls, tokens and cost from the store; call nothing")]
BudgetOption = Annotated[float | None, typer.Option("--budget", help="stop before spending more than this many US dollars")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of Markdown tables")]
MlflowOption = Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="log the run to MLflow")]


def _workspace(config: Path | None, model: str | None, store: str | None, guidelines: str | None, **more: object) -> Workspace:
    settings: Settings = load_settings(config).with_overrides(model_name=model, store=store, guidelines=guidelines, **more)
    return Workspace(settings)


def _header(workspace: Workspace) -> str:
    described = workspace.describe()
    header = (
        f"model {described['model']} · program {described['program']} (judge {described['judge_hash']}) · "
        f"guidelines {described['guidelines']} · judge mode {described['judge_mode']}"
    )
    return header + (f"\nnote: {described['judge_mode_note']}" if described["judge_mode_note"] else "")


def _announce(workspace: Workspace) -> None:
    """Say at once, on stderr, when the judge mode asked for cannot be used."""
    note = workspace.judge_mode[1]
    if note:
        typer.echo(f"rae: note: {note}", err=True)


@app.command()
def annotate(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="judge the pairs in this file (columns query_id, query, product_id) instead of a split")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="concurrent LM calls")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="call the LM again for stored parse failures")] = False,
    dry_run: DryRunOption = False,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
    program: ProgramOption = None,
    judge_mode: JudgeModeOption = None,
) -> None:
    """Judge query-product pairs into the store. Rerunning continues where a run stopped; stored work is never paid twice."""
    workspace = _workspace(config, model, store, guidelines, workers=workers, program=program, judge_mode=judge_mode)
    _announce(workspace)
    chosen = _read_pairs(pairs) if pairs else workspace.labelled.pairs(split, queries, per_query)
    if dry_run:
        typer.echo(estimate_cost(workspace.steps(), chosen, workspace.labelled.catalog).line())
        return
    limit = _spending_limit(workspace, chosen, budget)
    run_id = workspace.store.start_run("annotate", workspace.settings.model_dump())
    status = "aborted"
    try:
        with workspace.using_model():
            run = AnnotationRun(workspace.steps(run_id, retry_failed), workspace.labelled.catalog, workspace.workers, limit=limit)
            summary = run.run(chosen)
        status = "finished"
    finally:
        workspace.store.finish_run(run_id, status, summary.as_dict() if status == "finished" else {})
    typer.echo(f"annotate {run_id} · {_header(workspace)}\n{summary.line()}")


@app.command()
def agreement(
    split: SplitOption = "dev",
    queries: QueriesOption = None,
    per_query: PerQueryOption = None,
    as_json: JsonOption = False,
    reviews: Annotated[bool, typer.Option("--with-reviews", help="include the pairs only human reviewers labelled")] = False,
    humans: Annotated[bool, typer.Option("--human-vs-human", help="also report agreement among humans on pairs several labelled")] = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
    program: ProgramOption = None,
    judge_mode: JudgeModeOption = None,
) -> None:
    """Agreement of the stored LLM labels (this program and model) with the human labels of a split. Makes no LM calls."""
    workspace = _workspace(config, model, store, guidelines, program=program, judge_mode=judge_mode, with_reviews=reviews or None)
    labels = workspace.labelled.select(split, queries, per_query)
    pairs = [Pair(h.query_id, h.query, h.product_id) for h in labels]
    outcomes = workspace.steps().stored_judgments(pairs, workspace.labelled.catalog)
    report = agreement_report(compare(labels, outcomes, workspace.labelled.catalog))
    among_humans = human_agreement(human_pairs(workspace.labelled, latest_reviews(workspace.store))) if humans else None
    if as_json:
        extra = {"human_vs_human": among_humans} if humans else {}
        typer.echo(dumps({**report.as_dict(), "split": split, "labelled_set": workspace.labelled.fingerprint(), **workspace.describe(), **extra}))
        return
    typer.echo(f"split {split} · labelled set {workspace.labelled.name} ({workspace.labelled.fingerprint()}) · {_header(workspace)}\n")
    typer.echo(to_markdown(report))
    if among_humans is not None and not among_humans["pairs_with_two_or_more_labels"]:
        typer.echo("\nHuman vs human: no pair has been labelled by two or more people yet (`rae review serve`).")
    elif among_humans is not None:
        typer.echo(f"\nHuman vs human: {among_humans['pairs_with_two_or_more_labels']} pairs labelled by two or more; "
                   f"Krippendorff's alpha {among_humans['alpha']:.3f}")
        for pair in among_humans["rater_pairs"]:
            typer.echo(f"- {pair['raters'][0]} vs {pair['raters'][1]}: {pair['pairs']} pairs, accuracy {pair['accuracy']:.3f}, kappa {pair['kappa']:.3f}")


@app.command()
def evaluate(
    engines: Annotated[str | None, typer.Option("--engines", help="comma-separated engine names (see `rae engines`)")] = None,
    queries: Annotated[int, typer.Option("--queries", help="how many queries")] = 20,
    split: Annotated[str | None, typer.Option("--split", help="use the labelled set's queries of this split (enables the validity check)")] = None,
    queries_file: Annotated[Path | None, typer.Option("--queries-file", help="a sample written by `rae queries sample`")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the log sample")] = 0,
    k: Annotated[int, typer.Option("--k", help="judge and score the top k of each engine")] = 10,
    as_json: JsonOption = False,
    mlflow: MlflowOption = True,
    workers: Annotated[int | None, typer.Option("--workers", help="concurrent LM calls")] = None,
    dry_run: DryRunOption = False,
    budget: BudgetOption = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
    program: ProgramOption = None,
    judge_mode: JudgeModeOption = None,
) -> None:
    """Retrieve with each engine, judge the union of their top k through the store, compare the engines.

    Queries come from --queries-file, else from the labelled set's --split, else from a frequency-stratified sample of
    the search log. Writes reports/<run-id>/ (Markdown, HTML with plots, JSON, per-query CSV, TREC runs)."""
    workspace = _workspace(config, model, store, guidelines, workers=workers, program=program, judge_mode=judge_mode)
    _announce(workspace)
    names = [n.strip() for n in engines.split(",")] if engines else _default_engines()
    chosen = _evaluation_queries(workspace, queries, split, queries_file, seed)
    catalog = workspace.labelled.catalog
    built = build_engines(names, workspace.settings.engine_specs(), catalog, Path(workspace.settings.cache_dir))
    if dry_run or budget is not None:
        pairs = list(dict.fromkeys(p for engine in built.values() for p in pairs_of(chosen, retrieve(engine, chosen, k)[0])))
        if dry_run:
            estimate = estimate_cost(workspace.steps(), pairs, catalog)
            typer.echo(dumps({"dry_run": {**asdict(estimate), "calls": estimate.calls}}) if as_json else estimate.line())
            return
    limit = _spending_limit(workspace, pairs, budget) if budget is not None else None
    run_id = workspace.store.start_run("evaluate", {**workspace.settings.model_dump(), "engines": names, "k": k})
    status, counts = "aborted", {}
    try:
        with workspace.using_model():
            evaluation = evaluate_engines(
                built, chosen, workspace.steps(run_id), catalog, k, workspace.workers, human_gains_for(chosen, workspace.labelled),
                not as_json, limit,
            )
        described = {**workspace.describe(), "run_id": run_id}
        report_dir = write_report(evaluation, described, Path(workspace.settings.reports_dir) / run_id)
        result = {**evaluation_json(evaluation, described), "report": str(report_dir)}
        if mlflow and workspace.settings.tracking_uri:
            result["mlflow_run_id"] = _log_evaluation(workspace, result, report_dir)
        status, counts = "finished", {name: e["lm_calls"] for name, e in result["engines"].items()}
    finally:
        workspace.store.finish_run(run_id, status, counts)
    if as_json:
        typer.echo(dumps(result))
        return
    typer.echo(markdown(evaluation, described))
    for name, engine in result["engines"].items():
        typer.echo(f"{name}: {engine['pairs']} pairs, {engine['new_pairs_judged']} new pairs judged with {engine['judgment_calls']} judgment calls, {engine['from_store']} from the store")
    typer.echo(f"report: {report_dir}/report.html")


@app.command()
def optimize(
    optimizer: Annotated[OptimizerName, typer.Option("--optimizer", help="labeled, random-search, mipro or gepa")] = "random-search",
    name: Annotated[str | None, typer.Option("--name", help="artifact name (default judge-<model>)")] = None,
    train_queries: Annotated[int, typer.Option("--train-queries")] = Slices.train_queries,
    dev_queries: Annotated[int, typer.Option("--dev-queries")] = Slices.dev_queries,
    test_queries: Annotated[int, typer.Option("--test-queries")] = Slices.test_queries,
    per_query: Annotated[int, typer.Option("--per-query")] = Slices.per_query,
    demos: Annotated[int, typer.Option("--demos", help="most bootstrapped demos")] = Budget.demos,
    labeled_demos: Annotated[int, typer.Option("--labeled-demos", help="most labelled demos")] = Budget.labeled_demos,
    candidates: Annotated[int, typer.Option("--candidates", help="random search: extra random demo sets")] = Budget.candidates,
    mipro_trials: Annotated[int, typer.Option("--mipro-trials")] = Budget.mipro_trials,
    gepa_calls: Annotated[int, typer.Option("--gepa-calls", help="GEPA: most metric calls")] = Budget.gepa_metric_calls,
    whole_program: Annotated[bool, typer.Option("--whole-program", help="compile requirements and guidelines too, not only the judge")] = False,
    as_json: JsonOption = False,
    mlflow: MlflowOption = True,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
) -> None:
    """Compile the program against the human labels (train), select on dev, report on test; save a versioned artifact."""
    workspace = _workspace(config, model, store, guidelines, program=UNCOMPILED)
    budget = Budget(demos, labeled_demos, candidates, mipro_trials, gepa_calls, workspace.workers)
    slices = Slices(train_queries, dev_queries, test_queries, per_query)
    artifact_name = name or f"judge-{_model_slug(workspace)}"
    outcome = optimize_program(workspace, optimizer, budget, slices, artifact_name, whole_program, not as_json)
    manifest = outcome.manifest
    if mlflow and workspace.settings.tracking_uri:
        metrics = {
            f"{split}.{program}.{metric}": scores[metric]["value"]
            for split, by_program in manifest.scores.items()
            for program, scores in by_program.items()
            for metric in ("kappa", "weighted_kappa", "accuracy")
        }
        params = {"artifact": manifest.artifact_id, "model": manifest.model, **{f"optimizer.{k}": v for k, v in manifest.optimizer.items()}}
        log_run(workspace.settings.tracking_uri, "optimize", manifest.artifact_id, params, metrics, Path(outcome.directory))
    if as_json:
        typer.echo(dumps({"artifact": manifest.artifact_id, "directory": outcome.directory, "scores": manifest.scores,
                               "compile_lm_calls": outcome.compile_calls, "seconds": outcome.seconds}))
        return
    typer.echo(
        f"compiled {manifest.artifact_id} with {optimizer} in {outcome.seconds / 60:.1f} min "
        f"({outcome.compile_calls} LM calls, {outcome.compile_tokens:,} tokens while compiling)\n"
    )
    typer.echo("| split | program | kappa [95% CI] | weighted kappa | accuracy | pairs |\n| --- | --- | --- | --- | --- | --- |")
    for split, by_program in outcome.reports.items():
        for program_name, report in by_program.items():
            typer.echo(f"| {split} | {program_name} | {report.kappa} | {report.weighted_kappa.value:.3f} | {report.accuracy.value:.3f} | {report.n_pairs} |")
    typer.echo(f"\nartifact: {outcome.directory}")


@app.command()
def tune(
    trials: Annotated[int, typer.Option("--trials", help="trials to add to the study")] = 6,
    study: Annotated[str, typer.Option("--study", help="study name; the same name continues a study")] = "rae-tune",
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL (default sqlite in the cache dir)")] = None,
    train_queries: Annotated[int, typer.Option("--train-queries")] = Slices.train_queries,
    dev_queries: Annotated[int, typer.Option("--dev-queries")] = Slices.dev_queries,
    per_query: Annotated[int, typer.Option("--per-query")] = Slices.per_query,
    save: Annotated[bool, typer.Option("--save/--no-save", help="save the best trial as a compiled program (scored on test too)")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    guidelines: GuidelinesOption = None,
) -> None:
    """Tune the knobs that are not prompts (demos, product fields and length, chain of thought) with Optuna."""
    workspace = _workspace(config, model, store, guidelines, program=UNCOMPILED)
    slices = Slices(train_queries, dev_queries, Slices.test_queries, per_query)
    url = storage or f"sqlite:///{Path(workspace.settings.cache_dir) / 'optuna.db'}"
    Path(workspace.settings.cache_dir).mkdir(parents=True, exist_ok=True)
    result = run_study(workspace, study, url, trials, slices, seed, not as_json)
    rows = [
        {"trial": t.number, **t.params, "kappa": t.value, "weighted_kappa": t.user_attrs.get("weighted_kappa"), "state": t.state.name}
        for t in result.trials
    ]
    best = TrialSettings(**result.best_trial.params)
    summary = {"study": study, "storage": url, "trials": rows, "best": {**result.best_trial.params, "kappa": result.best_value}}
    if save:
        tuned = best.workspace(workspace)
        outcome = optimize_program(tuned, "labeled", Budget(labeled_demos=best.demos), slices, f"tuned-{_model_slug(workspace)}", progress=not as_json)
        summary["artifact"] = outcome.manifest.artifact_id
    if as_json:
        typer.echo(dumps(summary))
        return
    typer.echo(f"study {study} ({url}): {len(rows)} trials")
    typer.echo("| trial | demos | fields | budget | chain of thought | dev kappa | state |\n| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        kappa = "" if row["kappa"] is None else f"{row['kappa']:.3f}"
        typer.echo(f"| {row['trial']} | {row.get('demos')} | {row.get('fields')} | {row.get('budget')} | {row.get('chain_of_thought')} | {kappa} | {row['state']} |")
    typer.echo(f"best: {summary['best']}" + (f"; saved as {summary['artifact']}" if save else ""))


def _model_slug(workspace: Workspace) -> str:
    return workspace.settings.model.name.split("/")[-1].replace(".", "-")


@programs_app.command("list")
def programs_list(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """The compiled programs that ship with rae or that `rae optimize` wrote, oldest first."""
    manifests = list_artifacts(Workspace(load_settings(config)).programs_dir)
    if as_json:
        typer.echo(dumps([vars(m) for m in manifests]))
        return
    if not manifests:
        typer.echo("no compiled programs yet: run `rae optimize`")
    for m in manifests:
        test = m.scores.get("test", {})
        kappas = " ".join(f"{p} {s['kappa']['value']:.3f}" for p, s in test.items())
        typer.echo(f"{m.artifact_id:28} {m.model:24} {m.optimizer.get('name', '?'):14} test kappa: {kappas}  {m.created}")


@app.command()
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
    workspace = _workspace(config, model, store, None)
    compiled = Workspace(workspace.settings.with_overrides(program=None)).manifest
    available = standard_variants(workspace, compiled.artifact_id if compiled else None, model_b)
    chosen = available
    if variants:
        names = [v.strip() for v in variants.split(",")]
        unknown = set(names) - {v.name for v in available}
        if unknown:
            raise ConfigError(f"unknown variants {sorted(unknown)} (available: {', '.join(v.name for v in available)})")
        chosen = [v for v in available if v.name in names]
    judgments = workspace.labelled.select(split, queries, per_query)
    results = [run_variant(workspace, variant, judgments, not as_json) for variant in chosen]
    tests = [paired_test(results[0], other) for other in results[1:]]
    if mlflow and workspace.settings.tracking_uri:
        metrics = {f"{r.variant.name}.kappa": r.report.kappa.value for r in results}
        log_run(workspace.settings.tracking_uri, "ablate", f"ablate-{split}", {"split": split, "queries": queries, "per_query": per_query,
                "variants": ",".join(v.name for v in chosen), "model": workspace.settings.model.name}, metrics)
    if as_json:
        typer.echo(dumps({
            "split": split,
            "pairs": len(judgments),
            "variants": [
                {"name": r.variant.name, "description": r.variant.description, "program": r.program,
                 **{m: vars(getattr(r.report, m)) for m in ("kappa", "weighted_kappa", "accuracy", "alpha")},
                 "n_pairs": r.report.n_pairs, "n_failed": r.report.n_failed, "lm_calls": r.summary.total_calls}
                for r in results
            ],
            "tests": [{**vars(t), "kappa_difference": vars(t.kappa_difference)} for t in tests],
            "not_run": skipped_variants(workspace),
        }))
        return
    typer.echo(f"{len(judgments)} human-labelled pairs of the {split} split ({queries} queries, {per_query} each) · model {workspace.settings.model.name}\n")
    typer.echo(ablation_table(results, tests))
    for result in results:
        typer.echo(f"- {result.variant.name}: {result.variant.description}")
    for reason in skipped_variants(workspace):
        typer.echo(f"- not run: {reason}")


@app.command()
def injection(
    split: SplitOption = "dev",
    pairs: Annotated[int, typer.Option("--pairs", help="how many human-irrelevant pairs to attack")] = 24,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
) -> None:
    """Measure how often instructions hidden in a listing flip the judge's label, with and without rae's defences."""
    workspace = _workspace(config, model, store, None)
    report = measure_injection(workspace, adversarial_judgments(workspace, split, pairs), not as_json)
    if as_json:
        typer.echo(dumps(report))
        return
    typer.echo(f"{report['pairs']} human-irrelevant pairs of the {split} split, each judged clean and with an instruction injected · {report['model']}\n")
    typer.echo("| judge | pairs | label raised by the injection | raised to highly_relevant |\n| --- | --- | --- | --- |")
    for name in ("undefended", "defended"):
        r = report[name]
        typer.echo(f"| {name} | {r['pairs']} | {r['flip_rate']:.1%} | {r['to_highly_relevant_rate']:.1%} |")
    flagging = report["flagging"]
    typer.echo(
        f"\nflagged as instructions to the judge: {flagging['caught']} of {flagging['injected']} injected listings; "
        f"{flagging['false_alarms_in_catalog']} of {flagging['catalog_products']} catalog listings (false alarms)"
    )


@app.command()
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
    workspace = _workspace(config, model, store, None, program=program)
    analysis = analyse_errors(workspace, workspace.labelled.select(split, queries, per_query), limit, not as_json)
    if as_json:
        typer.echo(dumps({**analysis.as_dict(), "split": split, **workspace.describe()}))
        return
    typer.echo(f"split {split} · {_header(workspace)}\n")
    typer.echo(f"{analysis.disagreements} disagreements with the human labels; {analysis.analysed} analysed, {analysis.failed} failed\n")
    typer.echo("| cause | pairs |\n| --- | --- |")
    for cause, count in analysis.as_dict()["causes"].items():
        typer.echo(f"| {cause} | {count} |")
    for cause, examples in analysis.examples.items():
        typer.echo(f"\n{cause}:")
        for example in examples[:3]:
            typer.echo(f"- {example['query']!r} / {example['product'][:60]!r}: human {example['human']}, judge {example['judge']}. {example['explanation']}")


@review_app.command("queue")
def review_queue(
    name: Annotated[str, typer.Option("--name", help="the queue's name (adding to an existing queue appends)")] = "review",
    size: Annotated[int, typer.Option("--size")] = 40,
    mix: Annotated[str, typer.Option("--mix", help="shares of confidence, disagreement and worst")] = "confidence:0.5,disagreement:0.3,worst:0.2",
    split: SplitOption = "dev",
    evaluation: Annotated[str | None, typer.Option("--evaluation", help="run id of an evaluation for its worst queries (default the latest)")] = None,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Queue the pairs a human should see: low confidence, hard disagreements with human labels, worst queries."""
    workspace = _workspace(config, model, store, None, program=program)
    try:
        shares = {part.split(":")[0].strip(): float(part.split(":")[1]) for part in mix.split(",") if part.strip()}
    except (IndexError, ValueError):
        raise ConfigError(f"--mix takes source:share pairs, e.g. confidence:0.5,disagreement:0.3,worst:0.2 (got {mix!r})") from None
    unknown = set(shares) - set(SOURCES)
    if unknown:
        raise ConfigError(f"unknown review sources {sorted(unknown)}: use {', '.join(SOURCES)}")
    report_dir = _evaluation_dir(workspace, evaluation)
    items = build_queue(workspace, name, size, shares, split, report_dir)
    reasons = Counter(item.reason.split(":")[0].split(" for ")[0] for item in items)
    typer.echo(f"queued {len(items)} pairs in {name!r}: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common()))
    if report_dir is None and shares.get("worst"):
        typer.echo("no evaluation run found: no worst-query pairs (run `rae evaluate` first)")


@review_app.command("serve")
def review_serve(
    name: Annotated[str, typer.Option("--name", help="the queue to review")] = "review",
    port: Annotated[int, typer.Option("--port")] = 8765,
    config: ConfigOption = None,
    model: ModelOption = None,
    store: StoreOption = None,
    program: ProgramOption = None,
) -> None:
    """Serve the review page on 127.0.0.1: one key per label (1, 2, 3), every label saved at once."""
    workspace = _workspace(config, model, store, None, program=program)
    server = start_server(ReviewService(workspace, name), port)
    typer.echo(f"review page: http://127.0.0.1:{server.server_address[1]}/?reviewer=<your name>  (Ctrl+C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


def _evaluation_dir(workspace: Workspace, run_id: str | None) -> Path | None:
    if run_id is None:
        finished = [r for r in workspace.store.runs("evaluate") if r.status == "finished"]
        if not finished:
            return None
        run_id = finished[0].run_id
    directory = Path(workspace.settings.reports_dir) / run_id
    if not (directory / "metrics.json").exists():
        raise ConfigError(f"no report of evaluation {run_id} in {directory}")
    return directory


@queries_app.command("sample")
def queries_sample(
    size: Annotated[int, typer.Option("--size", help="how many queries")] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out", help="where to write the sample (JSON)")] = Path("queries.json"),
    log: Annotated[Path | None, typer.Option("--log", help="search log (UBI, CSV, JSONL, Parquet); default the bundled UBI log")] = None,
    query_column: Annotated[str, typer.Option("--query-column")] = "user_query",
    count_column: Annotated[str | None, typer.Option("--count-column", help="a column of search counts, if the log has one")] = None,
    head: Annotated[int | None, typer.Option("--head", help="queries from the head (default a third of --size)")] = None,
    torso: Annotated[int | None, typer.Option("--torso")] = None,
    tail: Annotated[int | None, typer.Option("--tail")] = None,
    config: ConfigOption = None,
) -> None:
    """Sample queries from a search log, stratified by frequency (head, torso, tail), with a seed."""
    settings = load_settings(config)
    path = log or Path(settings.search_log or ESCI_QUERY_LOG)
    strata = None
    if head is not None or torso is not None or tail is not None:
        strata = {"head": head or 0, "torso": torso or 0, "tail": tail or 0}
    sample = sample_queries(read_search_log(path, query_column, count_column), size, seed, strata, log=str(path))
    sample.save(out)
    per_stratum = ", ".join(f"{s} {sum(q.stratum == s for q in sample.queries)} of {sample.available[s]}" for s in sample.available)
    typer.echo(f"wrote {sample.size} queries to {out} (seed {seed}; {per_stratum})")


@app.command("engines")
def engines_list(config: ConfigOption = None) -> None:
    """The engines rae knows: the built-in ones and those in the config file."""
    for name, spec in load_settings(config).engine_specs().items():
        note = "" if spec.kind != "dense" or dense_available() else "  (needs: pip install 'rae[dense]')"
        typer.echo(f"{name:20} {spec.model_dump_json(exclude={'kind'})} [{spec.kind}]{note}")


def _spending_limit(workspace: Workspace, pairs: list[Pair], budget: float | None) -> SpendingLimit | None:
    """A limit from --budget, expecting each call to cost what the dry run estimates."""
    if budget is None:
        return None
    estimate = estimate_cost(workspace.steps(), pairs, workspace.labelled.catalog)
    if estimate.cost_usd is None:
        name = workspace.settings.model.name
        raise ConfigError(f'--budget needs a price for {name}: LiteLLM has none; add [prices."{name}"] to the config')
    return SpendingLimit(budget, estimate.cost_usd / estimate.calls if estimate.calls else 0.0)


def _default_engines() -> list[str]:
    return [*DEFAULT_ENGINES, "hybrid"] if dense_available() else list(DEFAULT_ENGINES)


def _evaluation_queries(workspace: Workspace, n: int, split: str | None, queries_file: Path | None, seed: int) -> list[Query]:
    if queries_file is not None:
        return QuerySample.load(queries_file).queries[:n]
    if split is not None:
        return workspace.labelled.queries(split, n)
    log = Path(workspace.settings.search_log or ESCI_QUERY_LOG)
    return sample_queries(read_search_log(log), n, seed, log=str(log)).queries


def _log_evaluation(workspace: Workspace, result: dict, report_dir: Path) -> str:
    params = {key: result[key] for key in ("model", "program", "guidelines", "judge_hash", "guidelines_hash", "k", "queries", "run_id")}
    params["engines"] = ",".join(result["engines"])
    metrics = {}
    for name, engine in result["engines"].items():
        metrics |= {f"{name}.{metric}": value["value"] for metric, value in engine["metrics"].items()}
        metrics |= {f"{name}.lm_calls": engine["lm_calls"], f"{name}.cost_usd": engine["cost_usd"]}
    return log_run(workspace.settings.tracking_uri, "evaluate", result["run_id"], params, metrics, report_dir)


def _read_pairs(path: Path) -> list[Pair]:
    columns = JudgmentColumns()
    rows = read_rows(path, required=(columns.query_id, columns.query, columns.product_id))
    return [Pair(str(r.get(columns.query_id)), str(r.get(columns.query)), str(r.get(columns.product_id))) for r in rows]


def main() -> None:
    """The console script: a user-facing error is one line on stderr and exit status 1, never a traceback.
    Everything logged or printed as an error goes through the secret redaction first."""
    logging.basicConfig(level=logging.WARNING, handlers=[redacting_log_handler()], force=True)
    try:
        app()
    except RaeError as exc:
        print(f"rae: error: {redact(str(exc))}", file=sys.stderr)
        sys.exit(1)

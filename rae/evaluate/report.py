"""The evaluation report: the same tables as Markdown, as a self-contained HTML page with its plots and per-query
drill-down, and as JSON.

Written to ``reports/<run-id>/``: ``report.md``, ``report.html`` (everything inlined, so it opens anywhere),
``metrics.json``, ``queries.json`` (what ``rae report`` recomputes from), ``per_query.csv``, the engines' rankings as
TREC run files and the LLM labels as TREC qrels (so that other tools can score them), under ``runs/``.
"""

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from rae.evaluate.evaluation import Evaluation
from rae.evaluate.html_page import html_page
from rae.evaluate.tables import tables, title, unjudged_note
from rae.jsonout import dumps, plain
from rae.retrieve.trec import write_trec_run


def evaluation_json(evaluation: Evaluation, described: dict[str, Any]) -> dict[str, Any]:
    k = evaluation.k
    data = {
        **described,
        "k": k,
        "queries": len(evaluation.queries),
        "engines": {},
        "comparisons": [
            {**vars(c), "verdict": c.verdict} for c in evaluation.comparisons
        ],
        "validity": None,
        "human_correction": None,
        "worst_queries": {
            run.name: [{"query_id": q.query_id, "query": q.text, f"ndcg@{k}": round(s, 4)} for q, s in evaluation.worst_queries(run.name)]
            for run in evaluation.engines
        },
    }
    unjudged = evaluation.unjudged()
    for run in evaluation.engines:
        summary, total = run.annotation, run.annotation.total
        data["engines"][run.name] = {
            "metrics": {name: vars(estimate) for name, estimate in evaluation.metrics[run.name].summary.items()},
            "pairs": summary.pairs,
            "new_pairs_judged": summary.new_pairs_judged,
            "from_store": summary.from_store,
            "failed": summary.failed,
            "not_judged": summary.not_judged,
            "lm_errors": summary.errors,
            "unjudged_in_top_k": unjudged[run.name][0],
            "lm_calls": summary.total_calls,
            "judgment_calls": summary.lm_calls["judgment"],
            "input_tokens": total.input_tokens,
            "output_tokens": total.output_tokens,
            "cost_usd": total.cost_usd,
            "annotation_seconds": summary.seconds,
            "retrieval_seconds": run.retrieval_seconds,
        }
    if evaluation.corrected is not None:
        corrected = evaluation.corrected.as_dict()
        for name, by_metric in corrected.pop("engines").items():
            data["engines"][name]["ppi"] = by_metric
        by_pair = {(c["a"], c["b"]): c for c in corrected.pop("comparisons")}
        for comparison in data["comparisons"]:
            found = by_pair.get((comparison["a"], comparison["b"]))
            if found is not None:
                comparison["ppi"] = {k: v for k, v in found.items() if k not in ("a", "b")}
        data["human_correction"] = corrected
    if evaluation.validity is not None:
        v = evaluation.validity
        data["validity"] = {
            "metric": v.metric,
            "n_queries": v.n_queries,
            "llm": v.llm,
            "human": v.human,
            "human_judged": v.human_judged,
            "kendall_tau": v.kendall_tau,
            "verdicts": [{**vars(x), "agrees": bool(x.agrees)} for x in v.verdicts],
            "agreeing_verdicts": v.agreeing_verdicts,
        }
    return plain(data)


def markdown(evaluation: Evaluation, described: dict[str, Any]) -> str:
    return _markdown(evaluation, described, tables(evaluation, evaluation_json(evaluation, described)))


def write_report(evaluation: Evaluation, described: dict[str, Any], directory: Path, images: dict[str, str] | None = None) -> Path:
    """Every file of the report; ``images``: product id -> data URI of a cached image, for the drill-down."""
    directory.mkdir(parents=True, exist_ok=True)
    data = evaluation_json(evaluation, described)
    titled = tables(evaluation, data)
    (directory / "report.md").write_text(_markdown(evaluation, described, titled))
    (directory / "metrics.json").write_text(dumps(data) + "\n")
    (directory / "queries.json").write_text(dumps([asdict(q) for q in evaluation.queries]) + "\n")
    per_query(evaluation).to_csv(directory / "per_query.csv", index=False)
    (directory / "report.html").write_text(html_page(evaluation, described, titled, images))
    runs = directory / "runs"
    runs.mkdir(exist_ok=True)
    for run in evaluation.engines:
        write_trec_run(runs / f"{run.name}.trec", run.rankings, run.name)
    qrels = [f"{q} 0 {p} {g}" for q, labels in sorted(evaluation.llm_gains.items()) for p, g in sorted(labels.items())]
    (runs / "llm.qrels").write_text("\n".join(qrels) + "\n")
    return directory


def _markdown(evaluation: Evaluation, described: dict[str, Any], titled: dict[str, pd.DataFrame]) -> str:
    lines = [title(evaluation, described), ""]
    if (note := unjudged_note(evaluation)) is not None:
        lines += [note, ""]
    for heading, table in titled.items():
        lines += [f"## {heading}", "", table.to_markdown(index=False) if not table.empty else "", ""]
    return "\n".join(lines)


def per_query(evaluation: Evaluation) -> pd.DataFrame:
    by_id = {q.query_id: q for q in evaluation.queries}
    frames = []
    for name, metrics in evaluation.metrics.items():
        frame = metrics.per_query.reset_index()
        frame.insert(0, "engine", name)
        frame.insert(2, "query", [by_id[q].text for q in frame["query_id"]])
        frame.insert(3, "stratum", [by_id[q].stratum for q in frame["query_id"]])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def mlflow_fields(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """An evaluation's JSON as MLflow parameters and metrics (``<engine>.<metric>``)."""
    params = {key: result[key] for key in ("model", "program", "guidelines", "program_fingerprint", "k", "queries", "run_id")}
    params["engines"] = ",".join(result["engines"])
    metrics: dict[str, float | None] = {}
    for name, engine in result["engines"].items():
        metrics |= {f"{name}.{metric}": value["value"] for metric, value in engine["metrics"].items()}
        metrics |= {f"{name}.lm_calls": engine["lm_calls"], f"{name}.cost_usd": engine["cost_usd"]}
        for metric, estimates in engine.get("ppi", {}).items():
            metrics |= {f"{name}.ppi.{metric}": estimates["ppi"]["value"], f"{name}.humans_only.{metric}": estimates["humans_only"]["value"],
                        f"{name}.ppi_effective_n.{metric}": estimates["effective_n"]}
    return params, metrics

"""The evaluation report: the same tables as Markdown, as a self-contained HTML page with its plots, and as JSON.

Written to ``reports/<run-id>/``: ``report.md``, ``report.html`` (images inlined, so it opens anywhere),
``metrics.json``, ``per_query.csv``, the engines' rankings as TREC run files and the LLM labels as TREC qrels (so that
other tools can score them), under ``runs/``.
"""

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from rae.evaluate import plots
from rae.evaluate.evaluation import Evaluation
from rae.evaluate.metrics import metric_names
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
        "worst_queries": {
            run.name: [{"query_id": q.query_id, "query": q.text, f"ndcg@{k}": round(s, 4)} for q, s in evaluation.worst_queries(run.name)]
            for run in evaluation.engines
        },
    }
    for run in evaluation.engines:
        summary, total = run.annotation, run.annotation.total
        data["engines"][run.name] = {
            "metrics": {name: vars(estimate) for name, estimate in evaluation.metrics[run.name].summary.items()},
            "pairs": summary.pairs,
            "new_pairs_judged": summary.new_pairs_judged,
            "from_store": summary.from_store,
            "failed": summary.failed,
            "lm_calls": summary.total_calls,
            "judgment_calls": summary.lm_calls["judgment"],
            "input_tokens": total.input_tokens,
            "output_tokens": total.output_tokens,
            "cost_usd": total.cost_usd,
            "annotation_seconds": summary.seconds,
            "retrieval_seconds": run.retrieval_seconds,
        }
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


def tables(evaluation: Evaluation, described: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The report's tables, each titled; Markdown and HTML both render these."""
    data = evaluation_json(evaluation, described)
    names = metric_names(evaluation.k)
    engines = pd.DataFrame(
        [
            {
                "engine": name,
                **{m: _estimate(e["metrics"][m]) for m in names},
                "new pairs judged": e["new_pairs_judged"],
                "from store": e["from_store"],
                "LM calls": e["lm_calls"],
                "tokens in/out": f"{e['input_tokens']:,}/{e['output_tokens']:,}",
                "cost": "unknown" if e["cost_usd"] is None else f"${e['cost_usd']:.4f}",
                "time (judge, retrieve)": f"{e['annotation_seconds']:.0f}s, {e['retrieval_seconds']:.2f}s",
            }
            for name, e in data["engines"].items()
        ]
    )
    result = {f"Engines (95% CI over {len(evaluation.queries)} queries)": engines}
    if evaluation.comparisons:
        result["Comparisons (paired randomization test over queries)"] = pd.DataFrame(
            [
                {
                    "a vs b": f"{c.a} vs {c.b}",
                    f"{c.metric} a / b": f"{c.mean_a:.3f} / {c.mean_b:.3f}",
                    "difference (b - a)": f"{c.difference:+.3f}",
                    "p": f"{c.p_value:.3g}",
                    "effect d_z": f"{c.effect_size:.2f}",
                    "queries won a / b / tied": f"{c.wins_a} / {c.wins_b} / {c.ties}",
                    "verdict": c.verdict,
                }
                for c in evaluation.comparisons
            ]
        )
    if evaluation.validity is not None:
        v = evaluation.validity
        result[
            f"Validity: LLM vs human labels on {v.n_queries} human-labelled queries "
            f"(Kendall's tau {v.kendall_tau:.2f}; {v.agreeing_verdicts} of {len(v.verdicts)} pairwise verdicts agree)"
        ] = pd.DataFrame(
            [
                {"engine": e, f"{v.metric} (LLM labels)": f"{v.llm[e]:.3f}", f"{v.metric} (human labels)": f"{v.human[e]:.3f}",
                 f"judged@{evaluation.k} by humans": f"{v.human_judged[e]:.2f}"}
                for e in v.llm
            ]
        )
    worst = [
        {"engine": engine, "query": w["query"], f"ndcg@{evaluation.k}": f"{w[f'ndcg@{evaluation.k}']:.3f}"}
        for engine, rows in data["worst_queries"].items()
        for w in rows
    ]
    result["Worst queries per engine"] = pd.DataFrame(worst)
    return result


def markdown(evaluation: Evaluation, described: dict[str, Any]) -> str:
    lines = [_title(evaluation, described), ""]
    for title, table in tables(evaluation, described).items():
        lines += [f"## {title}", "", table.to_markdown(index=False), ""]
    return "\n".join(lines)


def write_report(evaluation: Evaluation, described: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.md").write_text(markdown(evaluation, described))
    (directory / "metrics.json").write_text(dumps(evaluation_json(evaluation, described)) + "\n")
    per_query(evaluation).to_csv(directory / "per_query.csv", index=False)
    (directory / "report.html").write_text(_html(evaluation, described))
    runs = directory / "runs"
    runs.mkdir(exist_ok=True)
    for run in evaluation.engines:
        write_trec_run(runs / f"{run.name}.trec", run.rankings, run.name)
    qrels = [f"{q} 0 {p} {g}" for q, labels in sorted(evaluation.llm_gains.items()) for p, g in sorted(labels.items())]
    (runs / "llm.qrels").write_text("\n".join(qrels) + "\n")
    return directory


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


def _html(evaluation: Evaluation, described: dict[str, Any]) -> str:
    k = evaluation.k
    figures = [("Metrics per engine", plots.metrics_with_ci(evaluation.metrics, metric_names(k)[:3]))]
    query_text = {q.query_id: q.text for q in evaluation.queries}
    for comparison in evaluation.comparisons:
        figures.append((f"{comparison.b} vs {comparison.a}", plots.per_query_differences(comparison, evaluation.metrics, query_text)))
    rankings = {run.name: run.rankings for run in evaluation.engines}
    figures.append(("Labels in the top k", plots.label_distribution(rankings, evaluation.llm_gains, k)))
    body = [f"<h1>{html.escape(_title(evaluation, described))}</h1>"]
    for title, table in tables(evaluation, described).items():
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(table.to_html(index=False, border=0, classes="table"))
    for title, png in figures:
        encoded = base64.b64encode(png).decode()
        body.append(f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{encoded}">')
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#212529}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{padding:4px 10px;border-bottom:1px solid #dee2e6;"
        "text-align:left;font-size:14px}img{max-width:100%}"
    )
    return f"<!doctype html><html><head><meta charset='utf-8'><title>rae evaluation</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"


def _title(evaluation: Evaluation, described: dict[str, Any]) -> str:
    return (
        f"rae evaluation {described.get('run_id', '')}: {len(evaluation.engines)} engines, {len(evaluation.queries)} queries, "
        f"top {evaluation.k}, judged by {described.get('model', '?')} (program {described.get('program', '?')}, "
        f"judge {str(described.get('judge_hash', '?'))[:16]})"
    )


def _estimate(estimate: dict[str, Any]) -> str:
    if estimate["value"] is None:
        return "n/a"
    if estimate["ci_low"] is None or estimate["ci_high"] is None:
        return f"{estimate['value']:.3f} ({estimate.get('note') or 'no interval'})"
    return f"{estimate['value']:.3f} [{estimate['ci_low']:.3f}, {estimate['ci_high']:.3f}]"


def mlflow_fields(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """An evaluation's JSON as MLflow parameters and metrics (``<engine>.<metric>``)."""
    params = {key: result[key] for key in ("model", "program", "guidelines", "judge_hash", "guidelines_hash", "k", "queries", "run_id")}
    params["engines"] = ",".join(result["engines"])
    metrics: dict[str, float | None] = {}
    for name, engine in result["engines"].items():
        metrics |= {f"{name}.{metric}": value["value"] for metric, value in engine["metrics"].items()}
        metrics |= {f"{name}.lm_calls": engine["lm_calls"], f"{name}.cost_usd": engine["cost_usd"]}
    return params, metrics

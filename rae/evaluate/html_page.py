"""The evaluation report as one self-contained HTML page: the tables, the plots (inlined PNG) and the per-query
drill-down (inlined data and script). It opens anywhere, offline, and can be mailed as one file."""

import base64
import html
from typing import Any

import pandas as pd

from rae.evaluate import plots
from rae.evaluate.drilldown import drilldown_section
from rae.evaluate.evaluation import Evaluation
from rae.evaluate.metrics import metric_names
from rae.evaluate.tables import title, unjudged_note

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#212529}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{padding:4px 10px;border-bottom:1px solid #dee2e6;"
    "text-align:left;font-size:14px}img.plot{max-width:100%}"
)


def html_page(evaluation: Evaluation, described: dict[str, Any], titled: dict[str, pd.DataFrame], images: dict[str, str] | None = None) -> str:
    body = [f"<h1>{html.escape(title(evaluation, described))}</h1>"]
    if (note := unjudged_note(evaluation)) is not None:
        body.append(f"<p><strong>{html.escape(note)}</strong></p>")
    for heading, table in titled.items():
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if not table.empty:
            body.append(table.to_html(index=False, border=0, classes="table"))
    for heading, png in _figures(evaluation):
        encoded = base64.b64encode(png).decode()
        body.append(f'<h2>{html.escape(heading)}</h2><img class="plot" alt="{html.escape(heading)}" src="data:image/png;base64,{encoded}">')
    body.append(drilldown_section(evaluation, images))
    return f"<!doctype html><html><head><meta charset='utf-8'><title>rae evaluation</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"


def _figures(evaluation: Evaluation) -> list[tuple[str, bytes]]:
    k = evaluation.k
    figures = [("Metrics per engine", plots.metrics_with_ci(evaluation.metrics, metric_names(k)[:3]))]
    if evaluation.corrected is not None and evaluation.corrected.engines:
        figures.append((f"{evaluation.main_metric} three ways", plots.three_ways(evaluation.corrected, evaluation.main_metric)))
    query_text = {q.query_id: q.text for q in evaluation.queries}
    for comparison in evaluation.comparisons:
        figures.append((f"{comparison.b} vs {comparison.a}", plots.per_query_differences(comparison, evaluation.metrics, query_text)))
    rankings = {run.name: run.rankings for run in evaluation.engines}
    figures.append(("Labels in the top k", plots.label_distribution(rankings, evaluation.llm_gains, k)))
    return figures

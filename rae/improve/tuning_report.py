"""A tuning study's report: one self-contained HTML page (the trials, the plot of score by trial with the best so far
and the held-out check beside it, the verdict), its JSON, and the tuned engine's TOML."""

import base64
import html
import json
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rae.evaluate.html_page import STYLE  # noqa: E402
from rae.evaluate.plots import png  # noqa: E402
from rae.improve.tuning import TuningResult  # noqa: E402


def study_plot(result: TuningResult) -> bytes:
    """Score by trial (its interval as a bar), the best so far as a line, and the held-out difference on the right."""
    figure, (trials, check) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [4, 1]})
    done = [t for t in result.trials if t.score is not None]
    xs, ys = [t.number for t in done], [t.score for t in done]
    errors = [[t.score - t.low for t in done], [t.high - t.score for t in done]]
    trials.errorbar(xs, ys, yerr=errors, fmt="o", color="#4c72b0", alpha=0.7, capsize=2, label="trial (95% interval)")
    best_so_far, best = [], float("-inf")
    for y in ys:
        best = max(best, y)
        best_so_far.append(best)
    trials.step(xs, best_so_far, where="post", color="#dd8452", label="best so far")
    trials.axhline(result.start.score, color="#55a868", linestyle="--", linewidth=1, label="start")
    trials.set_xlabel("trial")
    trials.set_ylabel(f"{result.metric} (tuning queries)")
    trials.legend(fontsize=8, loc="lower right")
    if result.heldout is not None:
        i = result.heldout.difference.interval
        check.errorbar([0], [i.value], yerr=[[i.value - i.ci_low], [i.ci_high - i.value]], fmt="s", color="#c44e52", capsize=4)
    check.axhline(0, color="black", linewidth=0.8)
    check.set_xticks([0], ["best - start"])
    check.set_title("held-out check", fontsize=9)
    figure.tight_layout()
    return png(figure)


def write_tuning_report(result: TuningResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tuning.json").write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    if result.tuned_toml:
        (directory / "engine.toml").write_text(result.tuned_toml)
    encoded = base64.b64encode(study_plot(result)).decode()
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in result.notes)
    body = (
        f"<h1>Tuning {html.escape(result.engine)}</h1><p><strong>{html.escape(result.verdict())}</strong></p>"
        f'<img class="plot" alt="score by trial" src="data:image/png;base64,{encoded}">'
        f"<h2>{html.escape(result.title())}</h2>{pd.DataFrame(result.trial_table()).to_html(index=False, border=0, classes='table')}"
        + (f"<ul>{notes}</ul>" if notes else "")
        + (f"<h2>The best trial as an engine ({html.escape(result.tuned_name)})</h2><p>To evaluate or gate; also in engine.toml beside "
           f"this page.</p><pre><code>{html.escape(result.tuned_toml)}</code></pre>" if result.tuned_toml else "")
    )
    page = directory / "report.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>rae tune-engine</title><style>{STYLE}</style></head><body>{body}</body></html>\n")
    return page

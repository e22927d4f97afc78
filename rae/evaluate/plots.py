"""The report's figures, as PNG bytes: metric per engine with CIs, per-query differences, label distribution."""

import io

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to bytes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rae.evaluate.compare import Comparison  # noqa: E402
from rae.evaluate.corrected import Corrected  # noqa: E402
from rae.evaluate.metrics import EngineMetrics, Gains  # noqa: E402
from rae.retrieve.rankings import Rankings  # noqa: E402

LABEL_COLOURS = {"highly_relevant": "#2b8a3e", "acceptable_substitute": "#f08c00", "irrelevant": "#c92a2a", "unjudged": "#adb5bd"}


def png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def metrics_with_ci(metrics: dict[str, EngineMetrics], names: list[str]) -> bytes:
    """One group of bars per metric, one bar per engine, with 95% bootstrap intervals."""
    figure, axis = plt.subplots(figsize=(7, 3.6))
    engines = list(metrics)
    width = 0.8 / max(len(engines), 1)
    for i, engine in enumerate(engines):
        values = [metrics[engine].summary[m] for m in names]
        means = np.array([v.value for v in values])
        errors = np.array([[v.value - v.ci_low for v in values], [v.ci_high - v.value for v in values]])
        axis.bar(np.arange(len(names)) + i * width, means, width, yerr=errors, capsize=3, label=engine)
    axis.set_xticks(np.arange(len(names)) + width * (len(engines) - 1) / 2, names)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("mean over queries")
    axis.legend(fontsize=8)
    axis.set_title("Metrics per engine (95% CI over queries)")
    return png(figure)


def per_query_differences(comparison: Comparison, metrics: dict[str, EngineMetrics], query_text: dict[str, str]) -> bytes:
    """Per-query difference of one metric between two engines, sorted: where one engine wins and by how much."""
    metric = comparison.metric
    a = metrics[comparison.a].per_query[metric]
    b = metrics[comparison.b].per_query[metric]
    differences = (b - a).dropna().sort_values()
    figure, axis = plt.subplots(figsize=(7, max(2.5, 0.22 * len(differences) + 1)))
    colours = ["#2b8a3e" if d > 0 else "#c92a2a" if d < 0 else "#adb5bd" for d in differences]
    axis.barh([query_text.get(q, q)[:40] for q in differences.index], differences.to_numpy(), color=colours)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_xlabel(f"{metric}: {comparison.b} minus {comparison.a}")
    axis.tick_params(axis="y", labelsize=7)
    axis.set_title(f"Per-query difference (p = {comparison.p_value:.3g}, d_z = {comparison.effect_size:.2f})")
    return png(figure)


def label_distribution(rankings: dict[str, Rankings], gains: Gains, k: int) -> bytes:
    """Share of each label in each engine's top k, unjudged (failed) included."""
    names = ["irrelevant", "acceptable_substitute", "highly_relevant", "unjudged"]
    shares = {}
    for engine, ranking in rankings.items():
        counts = dict.fromkeys(names, 0)
        for query_id, products in ranking.items():
            for product in products[:k]:
                gain = gains.get(query_id, {}).get(product)
                counts["unjudged" if gain is None else names[gain]] += 1
        total = sum(counts.values()) or 1
        shares[engine] = [counts[n] / total for n in names]
    figure, axis = plt.subplots(figsize=(7, 0.5 * len(shares) + 1.4))
    left = np.zeros(len(shares))
    for i, name in enumerate(names):
        values = np.array([shares[e][i] for e in shares])
        axis.barh(list(shares), values, left=left, color=LABEL_COLOURS[name], label=name)
        left += values
    axis.set_xlim(0, 1)
    axis.set_xlabel(f"share of the top {k}")
    axis.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return png(figure)


def three_ways(corrected: Corrected, metric: str) -> bytes:
    """Each engine's metric estimated by the judge alone, by humans alone and by both (PPI), with 95% intervals."""
    figure, axis = plt.subplots(figsize=(7, 3.6))
    engines = list(corrected.engines)
    kinds = [("llm_only", "judge only", "#868e96"), ("humans_only", "humans only", "#1c7ed6"), ("ppi", "PPI", "#2b8a3e")]
    width = 0.8 / len(kinds)
    for i, (field, label, colour) in enumerate(kinds):
        estimates = [getattr(corrected.engines[e][metric], field) for e in engines]
        means = np.array([e.value for e in estimates], dtype=float)
        errors = np.array([[e.value - e.ci_low for e in estimates], [e.ci_high - e.value for e in estimates]], dtype=float)
        axis.bar(np.arange(len(engines)) + i * width, np.nan_to_num(means), width, yerr=np.nan_to_num(errors), capsize=3, label=label, color=colour)
    axis.set_xticks(np.arange(len(engines)) + width, engines)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel(metric)
    axis.legend(fontsize=8)
    axis.set_title(f"{metric}: judge only, humans only ({len(corrected.labelled_queries)} queries), PPI")
    return png(figure)

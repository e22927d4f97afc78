"""The evaluation's tables, each titled: the Markdown report and the HTML page both render these."""

from typing import Any

import pandas as pd

from rae.evaluate.evaluation import Evaluation
from rae.evaluate.metrics import metric_names
from rae.evaluate.ppi import ThreeEstimates


def tables(evaluation: Evaluation, data: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The report's tables, each titled, from the evaluation and its JSON (``report.evaluation_json``)."""
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
    if evaluation.corrected is not None:
        result.update(corrected_tables(evaluation))
    worst = [
        {"engine": engine, "query": w["query"], f"ndcg@{evaluation.k}": f"{w[f'ndcg@{evaluation.k}']:.3f}"}
        for engine, rows in data["worst_queries"].items()
        for w in rows
    ]
    result["Worst queries per engine"] = pd.DataFrame(worst)
    return result


def corrected_tables(evaluation: Evaluation) -> dict[str, pd.DataFrame]:
    """The judge alone, humans alone and the two together (PPI) from the draw, for each engine and each comparison;
    and what the human labels that were not drawn show."""
    corrected, metric = evaluation.corrected, evaluation.main_metric
    result: dict[str, pd.DataFrame] = {}
    if corrected.found is not None:
        result.update(found_table(evaluation))
    if not corrected.engines:
        result[f"Human correction: {corrected.summary()}"] = pd.DataFrame()
        return result
    total = len(evaluation.queries)
    heading = (
        f"{metric} three ways: the judge alone on {total} queries, humans alone, and the judge corrected by humans (prediction-powered); "
        f"{corrected.summary()}"
    )
    engines = pd.DataFrame([{"engine": engine, **_three(by_metric[metric])} for engine, by_metric in corrected.engines.items()])
    result[heading] = engines
    if corrected.comparisons:
        result[f"{metric} differences (b - a) three ways; p from PPI"] = pd.DataFrame(
            [{"a vs b": f"{a} vs {b}", **_three(est), "p (PPI)": "" if est.p_value is None else f"{est.p_value:.3g}"}
             for (a, b), est in corrected.comparisons.items()]
        )
    return result


def found_table(evaluation: Evaluation) -> dict[str, pd.DataFrame]:
    """The humans' own metric on the products they labelled (condensed lists), and how much of each top k they cover."""
    found, metric, k = evaluation.corrected.found, evaluation.main_metric, evaluation.k
    heading = (f"{metric} by the human labels that exist, on the {found.queries} queries where they labelled any result (condensed lists): "
               "not a random sample of the pools, a check")
    rows = [{"engine": e, f"{metric} (humans, condensed)": str(est), f"share of top {k} with a human label": f"{found.coverage[e].labelled_share:.2f}"}
            for e, est in found.engines.items()]
    rows += [{"engine": f"{b} - {a}", f"{metric} (humans, condensed)": est.signed(), f"share of top {k} with a human label": ""}
             for (a, b), est in found.comparisons.items()]
    return {heading: pd.DataFrame(rows)}


def _three(estimates: ThreeEstimates) -> dict[str, str]:
    return {
        "judge only [95% CI]": str(estimates.llm_only),
        f"humans only, {estimates.n_human} queries ({estimates.design})": str(estimates.humans_only),
        "PPI [95% CI]": str(estimates.ppi),
        "worth (human-labelled queries)": "" if estimates.effective_n is None else f"{estimates.effective_n:.0f}",
    }


def title(evaluation: Evaluation, described: dict[str, Any]) -> str:
    return (
        f"rae evaluation {described.get('run_id', '')}: {len(evaluation.engines)} engines, {len(evaluation.queries)} queries, "
        f"top {evaluation.k}, judged by {described.get('model', '?')} (program {described.get('program', '?')}, "
        f"{str(described.get('program_fingerprint', '?'))[:16]})"
    )


def unjudged_note(evaluation: Evaluation) -> str | None:
    """A line under the title when the judge left products of the top k without a label: the metrics count them as not
    relevant, which otherwise only judged@k shows. It says why when this run knows (the budget, LM errors, answers that
    did not parse), and that running again judges what is missing, unless all that is missing did not parse."""
    missing = {name: counts for name, counts in evaluation.unjudged().items() if counts[0]}
    if not missing:
        return None
    summaries = [run.annotation for run in evaluation.engines]
    stopped, errors, failed = any(s.stopped_by_budget for s in summaries), sum(s.errors for s in summaries), sum(s.failed for s in summaries)
    why = []
    if stopped:
        why.append("the budget stopped the judging")
    if errors:
        why.append(f"{errors} LM errors")
    if failed:
        why.append(f"{failed} answers that did not parse")
    each = ", ".join(f"{name} lacks {n:,} of its {total:,}" for name, (n, total) in missing.items())
    note = (f"Incomplete: the judge has not labelled every product of the top {evaluation.k}" + (f" ({'; '.join(why)})" if why else "")
            + f": {each}. The metrics count them as not relevant (judged@{evaluation.k} is the share labelled).")
    if stopped or errors or not failed:
        note += " The same command again judges what the store lacks, paying for nothing twice" + (" (with more --budget)." if stopped else ".")
    return note


def _estimate(estimate: dict[str, Any]) -> str:
    if estimate["value"] is None:
        return "n/a"
    if estimate["ci_low"] is None or estimate["ci_high"] is None:
        return f"{estimate['value']:.3f} ({estimate.get('note') or 'no interval'})"
    return f"{estimate['value']:.3f} [{estimate['ci_low']:.3f}, {estimate['ci_high']:.3f}]"



"""What the optimizers maximise: agreement of the judge's label with the human label.

An exact match scores 1. An adjacent label (acceptable_substitute against either end) scores 0.5, and irrelevant
against highly_relevant scores 0: this is linear-weighted agreement, 1 - |gain difference| / 2. The scale is ordinal,
and a substitute judged relevant is a smaller error for a search team than an irrelevant product judged relevant;
scoring every miss as 0 would push the judge to avoid the middle label, the one humans and LLMs disagree on most.

When DSPy bootstraps demos (``trace`` is set), only an exact match counts, and only if what the program wrote on the
way is content (``rae.programs.validators``): a demo shown to the judge must be right, and must not teach it a
placeholder such as DSPy's "Not supplied for this particular example." or a guideline that is a version number.
"""

import dspy

from rae.labels import Label
from rae.programs.guidelines import Guidelines
from rae.programs.validators import guidelines_problem, reasoning_problem, requirements_problem

ESCI_MEANING = {
    "E": "exact: the product is what was asked for",
    "S": "substitute: somewhat relevant, it could stand in",
    "C": "complement: it goes with the asked-for item but is not it",
    "I": "irrelevant",
}


def label_agreement(gold: str, predicted: str | None) -> float:
    if predicted not in {str(label) for label in Label}:
        return 0.0
    return 1.0 - abs(Label(gold).gain - Label(predicted).gain) / 2


def agreement_metric(example: dspy.Example, prediction: dspy.Prediction, trace: object = None) -> float | bool:
    score = label_agreement(example.label, getattr(prediction, "label", None))
    if trace is None:
        return score
    return score == 1.0 and demo_problem(example, prediction) is None


def demo_problem(example: dspy.Example, prediction: dspy.Prediction) -> str | None:
    """Why a bootstrapped trace would make a degenerate demo: its reasoning, or (compiling the whole program) the
    requirements or guidelines it wrote, or the guidelines it read, say nothing. None: it may be a demo."""
    query = example.query
    problems = []
    if "reasoning" in prediction:
        problems.append(reasoning_problem(query, prediction.reasoning))
    if getattr(prediction, "requirements", None):
        problems.append(requirements_problem(query, prediction.requirements))
    guidelines = getattr(prediction, "guidelines", None)
    if isinstance(guidelines, Guidelines) and guidelines.written_for_the_query:
        problems.append(guidelines_problem(query, guidelines.by_label()))
    return next((p for p in problems if p is not None), None)


def feedback_metric(
    gold: dspy.Example, prediction: dspy.Prediction, trace: object = None, pred_name: str | None = None, pred_trace: object = None
) -> dspy.Prediction:
    """GEPA's metric: the same score, with the human label and the disagreement in words for its reflection step."""
    predicted = getattr(prediction, "label", None)
    score = label_agreement(gold.label, predicted)
    esci = getattr(gold, "esci", "")
    meaning = f" (ESCI {esci}: {ESCI_MEANING[esci]})" if esci in ESCI_MEANING else ""
    if score == 1.0:
        feedback = f"Correct: the human label is {gold.label}{meaning}."
    else:
        feedback = (
            f"The human annotator labelled this product {gold.label}{meaning}; the judge said {predicted}. "
            f"Query: {gold.query!r}. Re-read the guidelines and the product: which requirement of the query did the "
            "judge weigh wrongly (product type, brand, colour, size, or being an accessory), or was it too strict?"
        )
    return dspy.Prediction(score=score, feedback=feedback)

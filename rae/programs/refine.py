"""Outputs worth storing: an answer that parsed but says nothing is tried again, told why, then given up honestly.

Every predictor call of the program goes through ``Attempts``. The first attempt is the usual call (greedy for the
embedded model). An answer that does not parse is asked once more at temperature 0.7 (the same prompt at 0 would give
the same text); if that fails too, the step has failed, and keeps the raw text. An answer that parses but that the
step's check (``rae.programs.validators``) finds degenerate is asked again, up to ``attempts`` calls in all, at a
small temperature, each with its own seed and with the check's reason as a hint, passed the way ``dspy.Refine``
passes its advice: one more input field, ``hint_``, appended to the signature for that call. The first answer that is
content is kept; if none is, the first answer is kept, with the reason.

Why not ``dspy.Refine`` or ``dspy.BestOfN`` themselves (DSPy 3.4): both run every attempt, the first included, at
temperature 1.0; both catch every exception an attempt raises (a rate limit too) and print it on stdout, which would
break ``--json`` and bypass rae's retries; and Refine asks the same LM to write its advice, a structured output a small
model cannot write. This is their loop, with those three things changed. Each attempt is its own request, so each is
stored under its own key, and a rerun replays the same attempts from the store.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

HINT_FIELD = "hint_"
HINT_DESCRIPTION = "why an earlier answer to this same input was rejected: write content, not a placeholder"
HINT = dspy.InputField(desc=HINT_DESCRIPTION)
PARSE_RETRY_TEMPERATURE = 0.7

# Why a prediction is degenerate, or None. Its second argument is what the hints of earlier attempts said (the model
# must not answer by copying them).
Check = Callable[[dspy.Prediction, list[str]], str | None]


@dataclass(frozen=True)
class Refinement:
    """How many calls a step may make to get content (the first included), and the temperature of those after it."""

    attempts: int = 3
    temperature: float = 0.3


@dataclass(frozen=True)
class Validation:
    """What the checks found: why the first answer was degenerate, how many attempts were made, why the kept one
    still is (None: it is content)."""

    first_try: str | None
    attempts: int
    final: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"first_try": self.first_try, "attempts": self.attempts, "final": self.final}


class Attempts:
    """The calls of one step: ``next_call()`` gives the keyword arguments of the next predictor call (None: done),
    ``took`` and ``failed`` say what it gave, ``prediction()`` is the step's answer.

    The answer carries, beside the signature's outputs: ``status`` (ok, degenerate or failed), ``validation`` (None when
    no check ran or nothing parsed), ``error`` (why it failed or is degenerate), ``raw_output`` (what a parse failure
    wrote), ``kept`` (which of the step's calls, from 1, gave the answer kept) and ``calls`` (how many it made)."""

    def __init__(self, signature: type[dspy.Signature], inputs: dict[str, Any], check: Check | None, refinement: Refinement, seed: int = 0):
        self.signature, self.inputs, self.check, self.refinement, self.seed = signature, inputs, check, refinement, seed
        self.made = 0  # calls
        self.refined = 0  # refining calls, after the first answer that parsed
        self.kept: dspy.Prediction | None = None
        self.kept_at = 0
        self.first_problem: str | None = None
        self.problem: str | None = None
        self.hints: list[str] = []  # what the hints shown so far said: an answer that copies them is not content
        self.error: AdapterParseError | None = None
        self.done = False

    def next_call(self) -> dict[str, Any] | None:
        if self.done:
            return None
        if self.kept is None:  # nothing parsed yet: the first call, or its one retry at a higher temperature
            return dict(self.inputs) if self.made == 0 else {**self.inputs, "config": {"temperature": PARSE_RETRY_TEMPERATURE}}
        hinted = self.signature.append(HINT_FIELD, HINT)
        config = {"temperature": self.refinement.temperature, "seed": self.seed + self.refined + 1}
        return {**self.inputs, HINT_FIELD: self.problem, "signature": hinted, "config": config}

    def took(self, prediction: dspy.Prediction) -> None:
        self.made += 1
        if self.kept is None:
            self.kept, self.kept_at = prediction, self.made
            self.first_problem = self.problem = self.check(prediction, self.hints) if self.check is not None else None
        else:
            self.refined += 1
            if self.check(prediction, self.hints) is None:
                self.kept, self.kept_at, self.problem = prediction, self.made, None
        if self.problem is not None:
            self.hints = [*(self.hints or [HINT_DESCRIPTION]), self.problem]
        self.done = self.problem is None or self.refined >= self.refinement.attempts - 1

    def failed(self, error: AdapterParseError) -> None:
        self.made += 1
        if self.kept is None:
            self.error = error
            self.done = self.made >= 2  # the first call and its one retry
            return
        self.refined += 1  # a refining attempt that did not parse: no better answer
        self.done = self.refined >= self.refinement.attempts - 1

    def prediction(self) -> dspy.Prediction:
        if self.kept is None:
            lines = str(self.error).strip().splitlines() if self.error is not None else []
            raw = getattr(self.error, "lm_response", None)
            return dspy.Prediction(status="failed", error=(lines or ["unparseable output"])[0][:500], raw_output=raw, validation=None,
                                   kept=0, calls=self.made)
        validation = Validation(self.first_problem, 1 + self.refined, self.problem) if self.check is not None else None
        return dspy.Prediction(**dict(self.kept.items()), status="degenerate" if self.problem is not None else "ok", error=self.problem,
                               raw_output=None, validation=validation, kept=self.kept_at, calls=self.made)


def attempted(predictor: dspy.Module, attempts: Attempts) -> dspy.Prediction:
    """Run a step's attempts with ``predictor`` (a ``dspy.Predict`` or a module that passes its arguments to one)."""
    while (call := attempts.next_call()) is not None:
        try:
            attempts.took(predictor(**call))
        except AdapterParseError as error:
            attempts.failed(error)
    return attempts.prediction()


async def aattempted(predictor: dspy.Module, attempts: Attempts) -> dspy.Prediction:
    """``attempted``, through the predictor's ``acall``."""
    while (call := attempts.next_call()) is not None:
        try:
            attempts.took(await predictor.acall(**call))
        except AdapterParseError as error:
            attempts.failed(error)
    return attempts.prediction()


def seed_of(predictor: dspy.Predict) -> int:
    """The seed the predictor's LM decodes with (0 when it sets none): a refining attempt's seed counts up from it."""
    lm = predictor.lm or dspy.settings.lm
    return int((getattr(lm, "kwargs", None) or {}).get("seed") or 0)

"""Is an LM's output content, or a placeholder that merely parsed? One check per stage, small and explicit.

A parsed output can still say nothing: a weak model (and, now and then, a self-hosted 7B one) copies the prompt's
``{"field": "{field}"}`` template, DSPy's "Not supplied for this particular example." filler, a piece of the JSON
schema (``#/$defs/Requirement``), a version-like number, the query itself or the instructions it was given. Stored as
``ok``, such text would be reused by every later command, shown to a reviewer as the judge's guidelines and fed back
into optimisation. Each check returns the reason the output is degenerate, or None when it is content.
"""

import functools
import re
from collections.abc import Iterable, Sequence

import dspy

from rae.labels import LABELS

FILLER = re.compile(r"not supplied for this (particular example|conversation history message)", re.I)
PLACEHOLDER = re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_ ]*\s*\}")
SCHEMA = re.compile(r"\$defs|\$ref|#/|\"properties\"\s*:|\"type\"\s*:\s*\"(string|object|array)\"|```|\bjson (object|schema)\b", re.I)
VERSION = re.compile(r"\b[vV]?\d+(?:\.\d+){2,}(?:\.[xX*])?\b")
WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# Words that carry no content of their own in an output: the labels and the field names a template would show.
EMPTY_WORDS = {word for label in LABELS for word in str(label).split("_")} | {
    "highly", "relevant", "acceptable", "substitute", "irrelevant", "product", "type", "label", "reasoning", "requirement",
    "requirements", "guidelines", "guideline", "query", "name", "value", "importance", "must", "should", "nice", "none", "null",
}
MIN_WORDS = 1
MIN_ECHO_CHARS = 12  # shorter texts ("red", "size 42") may well appear in the prompt and still be an answer


def text_problem(text: str | None, query: str = "", prompt: Iterable[str] = (), min_words: int = MIN_WORDS) -> str | None:
    """Why ``text`` is not content (a short reason), or None. ``prompt`` holds what else the model was shown and may
    copy: the signature's instructions and field descriptions, its other inputs (the guidelines, the listing), the
    hint of a refining attempt. A text found whole in one of them echoes the prompt."""
    if text is None or not str(text).strip():
        return "empty"
    text = str(text)
    if FILLER.search(text):
        return "DSPy's filler for a missing field"
    if PLACEHOLDER.search(text):
        return "a {field} placeholder"
    if SCHEMA.search(text):
        return "mentions the output schema or format"
    if VERSION.search(text):
        return "a version-like number"
    flat = _flat(text)
    if query and flat == _flat(query):
        return "echoes the query"
    if echoes(flat, prompt):
        return "echoes the prompt"
    if len([w for w in WORD.findall(flat) if w not in EMPTY_WORDS]) < min_words:
        return "says nothing"
    return None


def requirements_problem(query: str, requirements: Sequence[object], prompt: Iterable[str] = ()) -> str | None:
    """A requirement list is degenerate if it is empty, if any requirement's name or value is a placeholder, filler,
    schema or version-like number, or if it lists one requirement several times. A value may be the query itself
    (the query "kettle" asks for the product type "kettle"), and a value may be one word."""
    if not requirements:
        return "no requirement"
    prompt = list(prompt)
    seen = set()
    for requirement in requirements:
        name, value = str(getattr(requirement, "name", "")), str(getattr(requirement, "value", ""))
        for part, text in (("name", name), ("value", value)):
            problem = text_problem(text, prompt=prompt, min_words=0)
            if problem is not None:
                return f"a requirement's {part}: {problem}"
        key = (_flat(name), _flat(value))
        if key in seen:
            return "the same requirement twice"
        seen.add(key)
    return None


def guidelines_problem(query: str, by_label: dict[str, str], prompt: Iterable[str] = ()) -> str | None:
    """Guidelines are degenerate if any label's text is not content, or if two labels are given the same text (the
    judge could not tell them apart)."""
    prompt = list(prompt)
    for label, text in by_label.items():
        problem = text_problem(text, query, prompt)
        if problem is not None:
            return f"{label}: {problem}"
    texts = [_flat(text) for text in by_label.values()]
    if len(set(texts)) < len(texts):
        return "the same text for two labels"
    return None


def reasoning_problem(query: str, reasoning: str | None, prompt: Iterable[str] = ()) -> str | None:
    """A reasoning must be the judge's own words: not a placeholder, and not a piece of its prompt copied back (the
    guidelines, or the listing's title)."""
    return text_problem(reasoning, query, prompt)


def echoes(flat_text: str, prompt: Iterable[str]) -> bool:
    """Whether a text (already flattened) is found whole in one of the prompt's texts: a copy, not an answer.

    Each word of a flattened text is found as it is in the lower-cased text it came from, so a prompt text without
    the answer's longest word is passed over before it is flattened: the listing is new on almost every judgment,
    and flattening it was most of what this check cost."""
    if len(flat_text) < MIN_ECHO_CHARS:
        return False
    longest = max(flat_text.split(" "), key=len)
    return any(longest in str(sentence).lower() and flat_text in _flat(sentence) for sentence in prompt)


@functools.lru_cache(maxsize=256)
def prompt_sentences(signature: type[dspy.Signature]) -> tuple[str, ...]:
    """The instructions and field descriptions of a signature: what a copying model echoes back. Worked out once per
    signature (a signature's fields are rebuilt each time they are read, and every judgment is checked against them)."""
    descriptions = [(f.json_schema_extra or {}).get("desc", "") for f in signature.fields.values()]
    return (signature.instructions, *[d for d in descriptions if d and not d.startswith("${")])


@functools.lru_cache(maxsize=4096)
def _flat(text: str) -> str:
    """Lower-cased, punctuation made space, runs of space made one. Remembered: the prompt's sentences and guidelines
    an answer is checked against are the same for many calls."""
    return " ".join(re.sub(r"[^\w]+", " ", str(text).lower()).split())

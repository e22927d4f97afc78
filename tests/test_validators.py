"""The output checks: each rule on the placeholders the embedded model really stored, and content left alone."""

import pytest

from rae.programs.guidelines import GENERIC_GUIDELINES, WriteGuidelines
from rae.programs.requirements import Requirement
from rae.programs.validators import guidelines_problem, prompt_sentences, reasoning_problem, requirements_problem, text_problem

# Texts the embedded model stored as "ok" before the checks existed (from the make slice's store).
STORED_PLACEHOLDERS = [
    ("{highly_relevant}", "a {field} placeholder"),
    ("Not supplied for this particular example.", "DSPy's filler for a missing field"),
    ("{#/$defs/ProductType", "mentions the output schema or format"),
    ("Product Type 1.0.2 (Python 3.7) (Codecademy)", "a version-like number"),
    ("1.0.2", "a version-like number"),
    ("}] }\n```\nThis is a JSON object", "mentions the output schema or format"),
    ("Product Type", "says nothing"),
    ("must", "says nothing"),
    ("", "empty"),
]


@pytest.mark.parametrize(("text", "reason"), STORED_PLACEHOLDERS)
def test_each_placeholder_the_model_stored_is_named(text, reason):
    assert text_problem(text, query="trp spyre") == reason


def test_an_echo_of_the_query_or_of_the_instructions_is_not_content():
    assert text_problem("Vegan Benzoyl Peroxide Face Wash", query="vegan benzoyl peroxide face wash") == "echoes the query"
    copied = "what a product must be to be highly relevant: it meets every 'must' requirement"
    assert text_problem(copied, query="red kettle", prompt=prompt_sentences(WriteGuidelines)) == "echoes the prompt"


@pytest.mark.parametrize(
    "text",
    [
        "A red electric kettle of about 1.7 litres; any brand.",
        "Wrong brand.",
        "The listing is a Lacoste tennis shoe for men, as asked; size 42 is not stated.",
        "Version 2.0 of the game",  # one dot: a version of a product, not a template's number
    ],
)
def test_content_passes(text):
    assert text_problem(text, query="red kettle", prompt=prompt_sentences(WriteGuidelines)) is None


def test_requirements_may_name_the_query_itself_but_not_the_schema_and_not_twice():
    kettle = Requirement(name="product type", value="kettle", importance="must")
    assert requirements_problem("kettle", [kettle]) is None  # the query "kettle" asks for a kettle
    assert requirements_problem("kettle", []) == "no requirement"
    schema = Requirement(name="#/$defs/Requirement", value="Product Type", importance="must")
    assert requirements_problem("trp spyre", [schema]) == "a requirement's name: mentions the output schema or format"
    assert requirements_problem("kettle", [kettle, kettle]) == "the same requirement twice"


def test_guidelines_must_tell_the_three_labels_apart():
    same = {"highly_relevant": "Product Type", "acceptable_substitute": "a red kettle", "irrelevant": "a red kettle"}
    assert guidelines_problem("red kettle", same) in {"highly_relevant: says nothing", "the same text for two labels"}
    twins = {"highly_relevant": "a red kettle", "acceptable_substitute": "any kettle at all", "irrelevant": "any kettle at all"}
    assert guidelines_problem("red kettle", twins) == "the same text for two labels"
    assert guidelines_problem("red kettle", GENERIC_GUIDELINES.by_label()) is None
    stored = {"highly_relevant": "buying", "acceptable_substitute": "buying", "irrelevant": "must"}  # "ua vital woven pants"
    assert guidelines_problem("ua vital woven pants", stored) == "irrelevant: says nothing"
    assert guidelines_problem("tv", {"highly_relevant": "a tv", "acceptable_substitute": "a monitor", "irrelevant": "a tv stand"}) is None


def test_a_reasoning_that_copies_the_guidelines_or_the_listing_or_a_hint_is_an_echo():
    shown = [GENERIC_GUIDELINES.render(), "<product>\nTitle: Just My Size Women's Plus-Size Cooldri V-Neck, Petal Purple, 3X\n</product>"]
    copied_rubric = "The product is what the query asks for and meets every requirement the query states."
    assert reasoning_problem("tank top plus size women", copied_rubric, shown) == "echoes the prompt"
    copied_title = "Just My Size Women's Plus-Size Cooldri V-Neck, Petal Purple, 3X"
    assert reasoning_problem("tank top plus size women", copied_title, shown) == "echoes the prompt"
    kettle = [Requirement(name="no requirement", value="1.0", importance="must")]
    assert requirements_problem("table top bandsaw", kettle, ["no requirement"]) == "a requirement's name: echoes the prompt"


def test_a_reasoning_is_checked_like_any_text():
    assert reasoning_problem("red kettle", "Not supplied for this particular example.") == "DSPy's filler for a missing field"
    assert reasoning_problem("red kettle", "The listing is a blue toaster, not a kettle.") is None
    assert reasoning_problem("red kettle", None) == "empty"


def test_the_echo_check_passes_over_a_text_only_when_it_cannot_hold_the_answer():
    """``echoes`` skips a prompt text that lacks the answer's longest word before flattening it; on every bundled listing
    it must say what flattening each text would say: pieces of the listing (cut mid-word, upper-cased, re-punctuated)
    are echoes, and the same pieces with a word changed are not."""
    from rae.datasets.bundled import esci_us
    from rae.programs.product_text import seller_text
    from rae.programs.validators import _flat, echoes

    catalog = esci_us().catalog
    listings = [seller_text(catalog[product_id]) for product_id in sorted(catalog)]
    checked = 0
    for i, listing in enumerate(listings):
        flat = _flat(listing)
        if len(flat) < 40:
            continue
        piece = flat[i % 7 + 3 : i % 7 + 3 + 30].strip()  # may start and end inside a word
        for answer in (piece, _flat(piece.upper().replace(" ", ", ")), _flat(piece + " zqxv"), _flat("quite " + piece)):
            assert echoes(answer, [listing, "another text"]) == any(answer in _flat(text) for text in (listing, "another text"))
            checked += 1
    assert checked > 20000 and echoes(_flat(listings[0][:60].upper()), ["x", listings[0]])

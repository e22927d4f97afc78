import hashlib
import json
import typing

import pytest

from rae.datasets.bundled import ESCI_SPLITS, esci_us
from rae.datasets.splits import SPLITS, assign_splits, read_frozen_splits, split_of
from rae.labels import ESCI_MAPPING, LABELS, Label, UnknownLabelError, parse_mapping, to_label
from rae.programs.judge import LabelName


def test_the_judge_outputs_exactly_the_label_scale():
    assert list(typing.get_args(LabelName)) == [str(label) for label in LABELS]


def test_esci_maps_complements_to_irrelevant_and_keeps_the_scale_order():
    assert [ESCI_MAPPING[k] for k in "ESCI"] == [Label.HIGHLY_RELEVANT, Label.ACCEPTABLE_SUBSTITUTE, Label.IRRELEVANT, Label.IRRELEVANT]
    assert [label.gain for label in LABELS] == [0, 1, 2]


def test_labels_read_in_either_vocabulary_and_unknown_ones_are_named():
    assert to_label("E") is Label.HIGHLY_RELEVANT
    assert to_label(" acceptable_substitute ") is Label.ACCEPTABLE_SUBSTITUTE
    with pytest.raises(UnknownLabelError, match="'X'"):
        to_label("X")


def test_a_configured_mapping_may_send_substitutes_elsewhere_but_not_to_an_unknown_label():
    mapping = parse_mapping({"E": "highly_relevant", "S": "irrelevant", "C": "irrelevant", "I": "irrelevant"})
    assert to_label("S", mapping) is Label.IRRELEVANT
    with pytest.raises(UnknownLabelError, match="relevant-ish"):
        parse_mapping({"E": "relevant-ish"})


def test_the_published_split_is_reproduced_by_the_rule_and_has_not_changed():
    frozen = read_frozen_splits(ESCI_SPLITS)
    assert frozen == assign_splits(set(frozen))
    # The published split's own hash: if this fails, a published split was changed. Never update it; add a new seed.
    digest = hashlib.sha256(json.dumps(sorted(frozen.items())).encode()).hexdigest()[:16]
    assert digest == "6be17aaefd7ae8b6"


def test_a_query_keeps_its_split_whatever_else_is_in_the_set():
    alone = split_of("100064")
    assert assign_splits({"100064", "new-query-1", "new-query-2"})["100064"] == alone
    assert {split_of(str(i)) for i in range(200)} == set(SPLITS)


def test_bundled_set_loads_with_every_label_and_product():
    data = esci_us()
    assert len(data.judgments) == 5311 and len(data.catalog) == 6764
    assert {j.original_label for j in data.judgments} == set("ESCI")
    counts = {s: len({j.query_id for j in data.select(s)}) for s in SPLITS}
    assert counts == {"train": 63, "dev": 25, "test": 32}


def test_a_slice_is_the_first_queries_and_a_fixed_sample_of_pairs():
    data = esci_us()
    first = data.select("dev", queries=3, per_query=5)
    assert len({j.query_id for j in first}) == 3 and len(first) == 15
    assert first == data.select("dev", queries=3, per_query=5)
    assert {j.query_id for j in first} == set(sorted({j.query_id for j in data.select("dev")})[:3])

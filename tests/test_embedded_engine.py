import pytest
from dspy import lm15
from dspy.lm15 import Config, ImagePart, Message, Request

from rae.lm.embedded import _chat_messages, _generation_options, bounded_schema


def test_every_free_string_and_list_is_bounded_and_enums_are_left_alone():
    schema = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "label": {"type": "string", "enum": ["a", "b"]},
            "requirements": {"type": "array", "items": {"$ref": "#/$defs/R"}},
        },
        "$defs": {"R": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    bounded = bounded_schema(schema, max_string_chars=400, max_items=6)
    assert bounded["properties"]["reasoning"]["maxLength"] == 400
    assert "maxLength" not in bounded["properties"]["label"]
    assert bounded["properties"]["requirements"]["maxItems"] == 6
    assert schema["properties"]["reasoning"] == {"type": "string"}  # the caller's schema is not changed


def test_a_json_schema_becomes_llama_cpps_json_object_with_schema():
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    request = Request(
        model="local/smollm2",
        messages=(Message.user("hi"),),
        system="be brief",
        config=Config(max_tokens=50, response_format={"type": "json_schema", "schema": schema, "name": "Out"}),
    )
    options = _generation_options(request, default_seed=7)
    assert options == {"temperature": 0.0, "seed": 7, "max_tokens": 50, "response_format": {"type": "json_object", "schema": schema}}
    assert _chat_messages(request) == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_an_image_is_refused_with_a_clear_message():
    request = Request(model="local/smollm2", messages=(Message.user([ImagePart(url="https://example.com/kettle.png")]),))
    with pytest.raises(lm15.UnsupportedFeatureError, match="reads text only"):
        _chat_messages(request)

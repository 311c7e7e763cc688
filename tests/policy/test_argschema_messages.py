"""What the argument check tells the model: the pointer, what was expected, what was sent."""

from __future__ import annotations

from typing import Any

import pytest

from mcpfence.policy.argschema import compile_input_schema


def messages(schema: dict[str, Any], args: Any) -> list[str]:
    return [problem.message for problem in compile_input_schema(schema).problems(args)]


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    ("schema", "args", "message"),
    [
        (obj(flag={"type": "boolean"}), {"flag": "false"}, '/flag must be a boolean, got the string "false"'),
        (obj(flag={"type": "boolean"}), {"flag": 0}, "/flag must be a boolean, got the integer 0"),
        (obj(flag={"type": "boolean"}), {"flag": None}, "/flag must be a boolean, got null"),
        (obj(n={"type": "integer"}), {"n": "412"}, '/n must be an integer, got the string "412"'),
        (obj(n={"type": "integer"}), {"n": 4.5}, "/n must be an integer, got the number 4.5"),
        (obj(s={"type": "string"}), {"s": 7765}, "/s must be a string, got the integer 7765"),
        (obj(s={"type": "string"}), {"s": [1]}, "/s must be a string, got an array"),
        (obj(s={"type": ["string", "null"]}), {"s": {}}, "/s must be a string or null, got an object"),
    ],
)
def test_a_type_mismatch_names_the_pointer_and_both_types(schema: Any, args: Any, message: str) -> None:
    assert messages(schema, args) == [message]


def test_a_nullable_written_as_any_of_reads_as_one_union() -> None:
    schema = obj(status={"anyOf": [{"type": "boolean"}, {"type": "null"}]})
    expected = '/status must be a boolean or null, got the string "null"'
    assert messages(schema, {"status": "null"}) == [expected]


def test_a_missing_required_property_is_named_by_its_pointer() -> None:
    schema = obj(items={"type": "array", "items": {"type": "object", "required": ["Contact_ID"]}})
    assert messages(schema, {"items": [{}]}) == ["/items/0/Contact_ID is required"]


def test_an_unaccepted_property_lists_what_is_accepted() -> None:
    schema = {**obj(id={}, tag={}), "additionalProperties": False}
    expected = "/tags is not accepted by this tool; accepted here: id, tag"
    assert messages(schema, {"id": 1, "tags": []}) == [expected]


def test_an_enum_mismatch_lists_the_allowed_values() -> None:
    schema = obj(stream={"enum": ["outbound", "broadcast"]})
    assert messages(schema, {"stream": "Outbound"}) == [
        '/stream must be one of "outbound", "broadcast", got the string "Outbound"'
    ]


def test_a_bound_says_the_limit_and_the_value() -> None:
    assert messages(obj(n={"minimum": 1}), {"n": 0}) == ["/n must be at least 1, got 0"]
    assert messages(obj(a={"minItems": 1}), {"a": []}) == ["/a must have at least 1 item, got 0"]


def test_mixed_alternatives_show_the_closest_one() -> None:
    schema = obj(to={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
    assert messages(schema, {"to": [1]}) == [
        "/to matches none of the accepted forms; closest: /to/0 must be a string, got the integer 1"
    ]


def test_the_logged_form_names_types_but_never_values() -> None:
    [problem] = compile_input_schema(obj(token={"type": "integer"})).problems({"token": "s3cr3t"})
    assert problem.logged == "/token must be an integer, got a string"


def test_a_schema_that_cannot_compile_fails_every_call() -> None:
    [message] = messages({"type": "no-such-type"}, {})
    assert message.startswith("the tool's inputSchema is not a valid JSON Schema")


def test_a_remote_ref_is_never_fetched() -> None:
    [message] = messages({"$ref": "http://127.0.0.1:9/schema.json"}, {})
    assert "does not fetch remote $ref" in message


def test_each_distinct_schema_compiles_once() -> None:
    assert compile_input_schema(obj(a={})) is compile_input_schema(obj(a={}))

"""JSON-RPC framing: what mcpfence accepts, and the one form it forwards."""

from __future__ import annotations

import json

import pytest

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError


def test_malformed_json_is_a_parse_error() -> None:
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(b'{"jsonrpc": "2.0",')
    assert caught.value.code == jsonrpc.PARSE_ERROR


def test_duplicate_keys_are_an_invalid_request_naming_the_key() -> None:
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(b'{"id": 1, "method": "a", "method": "b"}')
    assert caught.value.code == jsonrpc.INVALID_REQUEST
    assert "'method'" in caught.value.message


def test_duplicate_keys_in_nested_arguments_are_refused_too() -> None:
    with pytest.raises(JsonRpcError):
        jsonrpc.loads(b'{"params": {"arguments": {"email": "a", "email": "b"}}}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_a_parse_error(constant: str) -> None:
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(f'{{"x": {constant}}}'.encode())
    assert caught.value.code == jsonrpc.PARSE_ERROR


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400", "123456789e400"])
def test_numbers_beyond_double_range_are_a_parse_error(number: str) -> None:
    """They would parse as infinity, which no JSON can carry on."""
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(f'{{"x": {number}}}'.encode())
    assert caught.value.code == jsonrpc.PARSE_ERROR


def test_tiny_and_large_finite_numbers_parse() -> None:
    assert jsonrpc.loads(b'[1e-999, 1.5e300, 123456789012345678901234567890]') == [
        0.0, 1.5e300, 123456789012345678901234567890]


def test_json_nested_too_deeply_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(b"[" * 100_000)
    assert caught.value.code == jsonrpc.PARSE_ERROR


def test_dumps_is_compact_utf8() -> None:
    assert jsonrpc.dumps({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'.encode()


def test_dumps_writes_integers_beyond_64_bits() -> None:
    assert jsonrpc.dumps({"n": 2**70, "m": -(2**64)}) == f'{{"n":{2**70},"m":{-(2**64)}}}'.encode()


def test_dumps_round_trips_what_loads_accepts() -> None:
    message = {"id": "x", "params": {"s": "\u2028 \x00 é 😀", "f": 0.1, "e": 1e16, "z": -0.0, "t": True}}
    assert jsonrpc.loads(jsonrpc.dumps(message)) == message


def test_canonical_sorts_keys() -> None:
    assert jsonrpc.canonical({"b": 1, "a": {"d": 2, "c": 3}}) == b'{"a":{"c":3,"d":2},"b":1}'


@pytest.mark.parametrize(
    "message",
    [[], "text", {"id": 1, "method": "x"}, {"jsonrpc": "1.0", "id": 1, "method": "x"},
     {"jsonrpc": "2.0", "id": True, "method": "x"}, {"jsonrpc": "2.0", "id": 1, "method": 5},
     {"jsonrpc": "2.0", "id": 1}],
    ids=["array", "string", "no-version", "old-version", "bool-id", "method-not-string", "neither"],
)
def test_envelopes_that_are_not_json_rpc_are_invalid_requests(message: object) -> None:
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.validate_message(message)
    assert caught.value.code == jsonrpc.INVALID_REQUEST


@pytest.mark.parametrize(
    "message",
    [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "method": "notifications/x"},
     {"jsonrpc": "2.0", "id": "a", "result": {}}, {"jsonrpc": "2.0", "id": None, "error": {"code": 1}}],
    ids=["request", "notification", "response", "error"],
)
def test_requests_notifications_and_responses_are_valid(message: dict[str, object]) -> None:
    assert jsonrpc.validate_message(message) is message


def test_a_lone_surrogate_escape_is_a_parse_error() -> None:
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(b'{"a": "\\ud800"}')
    assert caught.value.code == jsonrpc.PARSE_ERROR


def test_a_surrogate_pair_escape_is_one_character() -> None:
    assert jsonrpc.loads(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_dumps_escapes_unicode_line_separators() -> None:
    """Forwarded JSON is also a line (stdio, line-delimited streams): U+2028/U+2029 stay escaped."""
    value = {"name": "a\u2028b\u2029c\x85d", "other": "é"}
    data = jsonrpc.dumps(value)
    assert len(data.decode("utf-8").splitlines()) == 1
    assert jsonrpc.loads(data) == value


def test_duplicate_keys_in_a_compact_body_are_refused_naming_the_key() -> None:
    """Compact bodies take the fast parser; a duplicate key still reaches the strict one."""
    with pytest.raises(JsonRpcError) as caught:
        jsonrpc.loads(b'{"id":1,"params":{"arguments":{"to":"a","to":"b"}}}')
    assert caught.value.code == jsonrpc.INVALID_REQUEST
    assert "'to'" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [b'[123456789012345678901234567890,-18446744073709551617]',
     b'[-0,1.0,0.1,1e16,1E5,-0.0]',
     b'["\\u0001","\\/","\\u00e9","\xc3\xa9","\\ud83d\\ude00","\xe2\x80\xa8","\\"\\\\\\n"]',
     b"[" * 300 + b"]" * 300,
     b'{"a":{"b":[true,false,null]},"":"","s":"\\n\xc3\xa9\\"","f":[0.1,-0.0,1e+16,18446744073709551615]}'],
    ids=["big-integers", "numbers", "strings", "deeper-than-orjson-writes", "as-orjson-writes-them"],
)
def test_compact_bodies_parse_to_what_the_standard_parser_reads(body: bytes) -> None:
    expected = json.loads(body)
    parsed = jsonrpc.loads(body)
    assert parsed == expected
    assert json.dumps(parsed) == json.dumps(expected)  # same types too: 1.0 stays a float, -0 an int

"""Property tests for the edges of the transport: line endings, event names, infinities,
malformed Host and Origin headers, repeated answers.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.fuzz.conftest import FUZZ, Target
from tests.e2e.fuzz.invariants import answers_to, assert_no_crash, received_messages
from tests.e2e.fuzz.strategies import MESSAGE_EVENTS, encode, sse_streams
from tests.e2e.fuzz.test_upstream_side import REQUEST_ID, SSE, exchange

EVERY_LINE_ENDING = st.sampled_from(["\n", "\r\n", "\r"])
ANY_EVENT_NAME = st.one_of(
    MESSAGE_EVENTS, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)
)


@FUZZ
@given(body=sse_streams(REQUEST_ID, EVERY_LINE_ENDING, MESSAGE_EVENTS))
def test_event_streams_with_any_sse_line_ending_never_crash_hang_or_leak(target: Target, body: bytes) -> None:
    exchange(target, 200, SSE, body)


def test_an_answer_repeated_in_an_upstream_stream_reaches_the_client_once(target: Target) -> None:
    answer = encode({"jsonrpc": "2.0", "id": REQUEST_ID, "result": {"tools": []}}).decode()
    messages = exchange(target, 200, SSE, f"data: {answer}\n\ndata: {answer}\n\n".encode())
    assert len(answers_to(messages, REQUEST_ID)) == 1, messages


@pytest.mark.parametrize("ending", ["\r\r", "\r\n\r", "\n\r"])
def test_the_last_event_of_a_stream_ending_in_cr_is_relayed(target: Target, ending: str) -> None:
    answer = encode({"jsonrpc": "2.0", "id": REQUEST_ID, "result": {"tools": []}}).decode()
    (received,) = answers_to(exchange(target, 200, SSE, f"data: {answer}{ending}".encode()), REQUEST_ID)
    assert received["result"] == {"tools": []}


@FUZZ
@given(body=sse_streams(REQUEST_ID, st.just("\n"), ANY_EVENT_NAME))
def test_events_of_any_name_are_checked(target: Target, body: bytes) -> None:
    exchange(target, 200, SSE, body)


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_an_infinite_number_in_a_request_is_a_parse_error(target: Target, number: str) -> None:
    params = f'{{"name":"echo","arguments":{{"text":{number}}}}}'
    body = f'{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}'
    response = target.post("rec", body.encode(), target.in_session())
    assert_no_crash(response)
    assert received_messages(response)[0]["error"]["code"] == -32700


def test_an_infinite_number_in_an_upstream_answer_is_refused(target: Target) -> None:
    body = f'{{"jsonrpc":"2.0","id":{REQUEST_ID},"result":{{"tools":[],"n":1e999}}}}'.encode()
    messages = exchange(target, 200, "application/json", body)
    assert len(answers_to(messages, REQUEST_ID)) == 1


@pytest.mark.parametrize("header", [{"host": "[::1"}, {"origin": "http://[::1"}])
def test_unclosed_ipv6_brackets_in_host_or_origin_are_refused(target: Target, header: dict[str, str]) -> None:
    response = target.post("rec", encode({"jsonrpc": "2.0", "id": 1, "method": "ping"}), header)
    assert_no_crash(response)
    assert 400 <= response.status_code < 500

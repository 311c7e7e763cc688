"""Property tests: a hostile upstream's answers, JSON or event streams, through mcpfence.

The client asks a read-only route for its tools; the upstream answers with whatever
the example draws (status, content type, body). Invariants: mcpfence never crashes or
hangs, the request gets exactly one answer, and no tool the route hides ever reaches
the client, whatever shape the answer took.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.fuzz.conftest import FUZZ, Target
from tests.e2e.fuzz.invariants import answers_to, assert_no_crash, received_messages
from tests.e2e.fuzz.strategies import (
    HIDDEN_NAMES,
    HIDDEN_TOOLS,
    LF_OR_CRLF,
    MESSAGE_EVENTS,
    READ_TOOL,
    TEXT,
    encode,
    sse_streams,
    upstream_messages,
)

REQUEST_ID = 41
STATUSES = st.sampled_from([200, 202])
# An upstream's HTTP error answers are relayed raw, unchecked (>= 400 answers bypass
# the pipeline), owned by the transport work: these tests turn green with it.
SSE = "text/event-stream"


def hidden_tools_in(messages: list[Any]) -> list[str]:
    """Names of hidden tools in any tool list the client received."""
    found = []
    for message in messages:
        result = message.get("result") if isinstance(message, dict) else None
        tools = result.get("tools") if isinstance(result, dict) else None
        for tool in tools if isinstance(tools, list) else ():
            if isinstance(tool, dict) and tool.get("name") in HIDDEN_NAMES:
                found.append(tool["name"])
    return found


def exchange(target: Target, status: int, content_type: str, body: bytes) -> list[Any]:
    """Script the upstream, ask for the tool list, check the invariants; the messages received."""
    target.script.status, target.script.content_type, target.script.body = status, content_type, body
    request = {"jsonrpc": "2.0", "id": REQUEST_ID, "method": "tools/list"}
    response = target.post("hostile", encode(request))
    assert_no_crash(response, upstream_status=status)
    messages = received_messages(response)
    assert not hidden_tools_in(messages), (response.status_code, response.text)
    return messages


JSON_BODIES = st.one_of(
    upstream_messages(REQUEST_ID).map(encode),
    st.lists(upstream_messages(REQUEST_ID), max_size=3).map(encode),
    TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(status=STATUSES, body=JSON_BODIES)
def test_json_answers_never_crash_hang_or_leak_hidden_tools(target: Target, status: int, body: bytes) -> None:
    exchange(target, status, "application/json", body)


@FUZZ
@given(status=STATUSES, body=sse_streams(REQUEST_ID, LF_OR_CRLF, MESSAGE_EVENTS))
def test_event_streams_never_crash_hang_or_leak_hidden_tools(
    target: Target, status: int, body: bytes
) -> None:
    exchange(target, status, SSE, body)


@FUZZ
@given(body=sse_streams(REQUEST_ID, LF_OR_CRLF, MESSAGE_EVENTS))
def test_a_streamed_request_is_answered_exactly_once(target: Target, body: bytes) -> None:
    messages = exchange(target, 200, SSE, body)
    assert len(answers_to(messages, REQUEST_ID)) == 1, messages


@FUZZ
@given(status=STATUSES, body=JSON_BODIES)
def test_a_json_request_is_answered_exactly_once(target: Target, status: int, body: bytes) -> None:
    messages = exchange(target, status, "application/json", body)
    assert len(answers_to(messages, REQUEST_ID)) == 1, messages


LEAKY_LISTING = encode({"jsonrpc": "2.0", "id": REQUEST_ID, "result": {"tools": [READ_TOOL, *HIDDEN_TOOLS]}})


ERROR_STATUSES = [400, 404, 429, 500, 503]


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_a_tool_list_streamed_with_an_error_status_is_still_filtered(target: Target, status: int) -> None:
    messages = exchange(target, status, SSE, b"data: " + LEAKY_LISTING + b"\n\n")
    assert len(answers_to(messages, REQUEST_ID)) == 1, messages


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_a_tool_list_sent_as_json_with_an_error_status_is_still_filtered(target: Target, status: int) -> None:
    messages = exchange(target, status, "application/json", LEAKY_LISTING)
    assert len(answers_to(messages, REQUEST_ID)) == 1, messages

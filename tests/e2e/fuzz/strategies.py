"""Hypothesis strategies for what either side of mcpfence may send."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.e2e.fuzz.conftest import TOOLS

# Strings that have broken parsers before: line separators, surrogates' neighbours,
# NUL, bidi controls, astral characters, JSON-looking strings models send.
AWKWARD = st.sampled_from(
    [
        "",
        " ",
        "\u2028",
        "\u2029",
        "\x85",
        "\x00",
        "\r",
        "\r\n",
        "\u202e",
        "😀",
        "null",
        "false",
        "0",
        "412",
        "no",
    ]
)
TEXT = st.one_of(st.text(max_size=20), AWKWARD)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(TEXT, st.sampled_from(["id", "method"])), inner, max_size=4),
    ),
    max_leaves=12,
)
IDS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63),
    TEXT,
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
METHODS = st.one_of(
    st.sampled_from(
        [
            "tools/call",
            "tools/list",
            "ping",
            "initialize",
            "resources/list",
            "prompts/get",
            "notifications/initialized",
            "notifications/cancelled",
            "notifications/progress",
        ]
    ),
    TEXT,
)
TOOL_NAMES = st.one_of(st.sampled_from(TOOLS), TEXT)


@st.composite
def tool_call_params(draw: st.DrawFn) -> Any:
    params: dict[str, Any] = {"name": draw(TOOL_NAMES)}
    if draw(st.booleans()):
        params["arguments"] = draw(st.one_of(st.fixed_dictionaries({"text": JSON}), JSON))
    return params


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """One JSON-RPC-shaped object: mostly well-formed, each field sometimes wrong."""
    method = draw(METHODS)
    message: dict[str, Any] = {"jsonrpc": draw(st.one_of(st.just("2.0"), TEXT))}
    if draw(st.booleans()):
        message["method"] = method
    if draw(st.integers(0, 3)):
        message["id"] = draw(IDS)
    kind = draw(st.integers(0, 3))
    if kind == 1:
        message["params"] = draw(tool_call_params()) if method == "tools/call" else draw(JSON)
    elif kind == 2:
        message["result"] = draw(JSON)
    elif kind == 3:
        message["error"] = draw(
            st.one_of(st.fixed_dictionaries({"code": st.integers(), "message": TEXT}), JSON)
        )
    return message


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


# A whole request body: one message, a batch, any JSON, or bytes that are not JSON.
BODIES = st.one_of(
    messages().map(encode),
    st.lists(messages(), min_size=0, max_size=4).map(encode),
    JSON.map(encode),
    st.binary(max_size=64),
)

# Header values: printable ASCII (without the outer spaces HTTP strips) and the shapes
# that have broken parsers before.
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip),
    st.sampled_from(
        [
            "localhost",
            "127.0.0.1:1",
            "[::1]:8080",
            "evil.example",
            "http://localhost:3000",
            "null",
            "text/event-stream",
            "application/json",
            "application/json; charset=latin-1",
            "*/*",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28",
            "1999-01-01",
            "0" * 64,
            "-1",
            "Bearer x",
        ]
    ),
)
HEADER_NAMES = st.sampled_from(
    [
        "host",
        "origin",
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
        "authorization",
        "mcp-method",
        "mcp-name",
        "mcp-param-text",
        "cookie",
        "traceparent",
    ]
)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5)


# -- the upstream side ---------------------------------------------------------------

# Tools a read-only route must show and must hide; listings mix them.
READ_TOOL = {"name": "list_contacts", "inputSchema": {"type": "object"}}
HIDDEN_TOOLS = [
    {"name": "delete_contact", "inputSchema": {"type": "object"}},
    {"name": "lookup", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": False}},
    {"name": "run", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": True}},
]
HIDDEN_NAMES = frozenset(tool["name"] for tool in HIDDEN_TOOLS)
LISTINGS = st.lists(st.sampled_from([READ_TOOL, *HIDDEN_TOOLS]), max_size=4).map(
    lambda tools: {"tools": tools}
)


@st.composite
def upstream_messages(draw: st.DrawFn, request_id: int) -> Any:
    """What an upstream may put in its answer: the answer (a tool list, maybe for another
    id), server requests and notifications, or junk."""
    kind = draw(st.integers(0, 4))
    answer_id = draw(st.one_of(st.just(request_id), IDS))
    if kind == 0:
        return {"jsonrpc": "2.0", "id": answer_id, "result": draw(LISTINGS)}
    if kind == 1:
        return {
            "jsonrpc": "2.0",
            "id": answer_id,
            "error": {"code": draw(st.integers()), "message": draw(TEXT)},
        }
    if kind == 2:
        return {"jsonrpc": "2.0", "method": draw(METHODS), "params": draw(JSON)}
    if kind == 3:
        return {"jsonrpc": "2.0", "id": draw(IDS), "method": draw(METHODS), "params": draw(JSON)}
    return draw(messages())


@st.composite
def sse_streams(
    draw: st.DrawFn, request_id: int, newlines: st.SearchStrategy[str], names: st.SearchStrategy[str | None]
) -> bytes:
    """An event stream of a few events, each a message or junk, with ``newlines`` and
    event ``names`` as drawn."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        eol = draw(newlines)
        name = draw(names)
        if draw(st.integers(0, 5)) == 0:
            data = draw(st.text(max_size=20))
        else:
            data = json.dumps(draw(upstream_messages(request_id)), ensure_ascii=False)
        lines = [f"id: {draw(st.integers(0, 99))}"] if draw(st.booleans()) else []
        if name is not None:
            lines.append(f"event: {name}")
        lines += [f"data: {line}" for line in data.split("\n")]
        if draw(st.booleans()):
            lines.insert(0, ": keep-alive")
        parts.append(eol.join(lines) + eol + eol)
    return "".join(parts).encode("utf-8", "surrogatepass")


LF_OR_CRLF = st.sampled_from(["\n", "\r\n"])
MESSAGE_EVENTS = st.sampled_from([None, "message"])

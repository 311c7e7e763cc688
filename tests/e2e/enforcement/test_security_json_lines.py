"""A stateless answer sent as JSON lines is checked line by line, and fails closed like SSE.

Each line is a message of its own: a tool list on any line is filtered, a line mcpfence
cannot parse is never relayed (a lenient client might read it), and a request whose answer
was dropped gets -32603 as the stream's last line. Older revisions have no JSON lines: there
such a body is not JSON, and never relayed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import MCP_HEADERS, MODERN_VERSION
from tests.e2e.enforcement.hostile import LISTING, TOOLS_LIST, canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi

PROGRESS = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}'
DUPLICATE_KEYS = LISTING.replace(b'"result":{', b'"result":{"tools":[],')
BODIES = {
    "/filtered/mcp": PROGRESS + b"\n" + LISTING + b"\n",
    "/twice/mcp": LISTING + b"\n" + LISTING + b"\n",
    "/duplicate/mcp": PROGRESS + b"\n" + DUPLICATE_KEYS + b"\n",
    "/garbage/mcp": PROGRESS + b"\nnot json\n" + LISTING[:40] + b"\n",
    "/pretty/mcp": json.dumps(json.loads(LISTING), indent=2).encode(),
}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(canned_upstream(b"application/json", BODIES, echo_id=True)) as base:
        routes = [read_only_route(path.split("/")[1], base + path) for path in BODIES]
        with run_proxy({"routes": routes}, Path(tmp_path_factory.mktemp("json-lines"))) as running:
            yield running


def list_tools_stateless(proxy: Proxy, path: str) -> list[dict[str, Any]]:
    """A 2026-07-28 tools/list; the answer's lines, each parsed."""
    headers = {**MCP_HEADERS, "mcp-protocol-version": MODERN_VERSION, "mcp-method": "tools/list"}
    response = httpx.post(proxy.url(path), json=TOOLS_LIST, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.split("\n") if line.strip()]


def tool_names(message: dict[str, Any]) -> list[str]:
    return [tool["name"] for tool in message["result"]["tools"]]


def test_a_tool_list_on_a_line_is_filtered(proxy: Proxy) -> None:
    progress, listing = list_tools_stateless(proxy, "/filtered/mcp")
    assert progress["method"] == "notifications/progress"
    assert tool_names(listing) == ["list_contacts"]


def test_a_tool_list_repeated_after_the_answer_is_dropped(proxy: Proxy) -> None:
    answers = list_tools_stateless(proxy, "/twice/mcp")
    assert [tool_names(answer) for answer in answers] == [["list_contacts"]]


def test_a_line_with_duplicate_keys_is_dropped_and_the_request_fails(proxy: Proxy) -> None:
    progress, failed = list_tools_stateless(proxy, "/duplicate/mcp")
    assert progress["method"] == "notifications/progress"
    assert failed["id"] == 1
    assert failed["error"]["code"] == -32603


def test_lines_that_are_not_json_never_reach_the_client(proxy: Proxy) -> None:
    messages = list_tools_stateless(proxy, "/garbage/mcp")
    assert [message.get("method") for message in messages] == ["notifications/progress", None]
    assert messages[-1]["error"]["code"] == -32603


def test_a_document_spread_over_lines_is_read_whole(proxy: Proxy) -> None:
    (listing,) = list_tools_stateless(proxy, "/pretty/mcp")
    assert tool_names(listing) == ["list_contacts"]


def test_before_2026_07_28_json_lines_are_not_json(proxy: Proxy) -> None:
    response = list_tools(proxy, "/filtered/mcp")
    assert "delete_contact" not in response.text
    assert response.json()["error"]["code"] == -32603

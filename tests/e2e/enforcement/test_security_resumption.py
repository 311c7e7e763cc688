"""Answers replayed on a resumed stream (``Last-Event-ID``) pass the route's filters too.

A client that reconnects with the id of a POST stream's priming event gets that
stream's answers again, on a GET. They arrive with no request of this GET to
belong to, yet a tool list among them must still lose the tools the route hides.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from tests.clients import MCP_HEADERS, SESSION_ID
from tests.e2e.enforcement.hostile import read_only_route
from tests.e2e.protocol.upstream import MemoryEventStore
from tests.servers import Proxy, run_proxy, serve_asgi

VERSION = "2025-11-25"


def crm() -> MCPServer:
    server = MCPServer("crm")

    @server.tool()
    def list_contacts() -> str:
        return "[]"

    @server.tool()
    def delete_contact(contact_id: str) -> str:
        return "deleted"

    return server


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    app = crm().streamable_http_app(event_store=MemoryEventStore())
    with serve_asgi(app) as base:
        route = read_only_route("ro", base + "/mcp")
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("resume"))) as running:
            yield running


def _post(client: httpx.Client, url: str, body: dict[str, object], session: str = "") -> httpx.Response:
    headers = {**MCP_HEADERS, "mcp-protocol-version": VERSION}
    if session:
        headers[SESSION_ID] = session
    return client.post(url, json=body, headers=headers)


def test_a_replayed_tool_list_hides_the_routes_hidden_tools(proxy: Proxy) -> None:
    url = proxy.url("/ro/mcp")
    with httpx.Client(timeout=10) as client:
        hello = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        opened = _post(client, url, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        session = opened.headers[SESSION_ID]
        _post(client, url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
        listed = _post(client, url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, session)
        assert "list_contacts" in listed.text and "delete_contact" not in listed.text
        priming = next(line[4:] for line in listed.text.splitlines() if line.startswith("id: "))

        headers = {"accept": "text/event-stream", SESSION_ID: session, "mcp-protocol-version": VERSION}
        with client.stream("GET", url, headers={**headers, "last-event-id": priming}) as replay:
            text = ""
            for chunk in replay.iter_text():
                text += chunk
                if "list_contacts" in text:
                    break
    assert "list_contacts" in text
    assert "delete_contact" not in text

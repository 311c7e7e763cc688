"""A request id names one request in flight: reusing it cannot swap which checks an answer gets.

Answers are matched to their requests by id. Were two requests in flight under
one id, a tool list's answer could be taken for a ``ping``'s and skip the
route's exposure filter, so a batch repeating an id, or (on a hosted route) a
request reusing the id of one still in flight in its session, is refused (-32600).
Relayed routes give every request an upstream id of its own instead
(test_security_concurrent_ids).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import MCP_HEADERS, SESSION_ID
from tests.servers import Proxy, run_proxy, serve_asgi
from tests.transport.conftest import UPSTREAM_SCRIPT

VERSION = "2025-03-26"
HEADERS = {**MCP_HEADERS, "mcp-protocol-version": VERSION}
TWINS = [
    {"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 7, "method": "ping"},
]
LISTING = {
    "tools": [
        {"name": "list_contacts", "inputSchema": {"type": "object"}},
        {"name": "delete_contact", "inputSchema": {"type": "object"}},
    ]
}


async def batch_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A 2025-03-26 server that answers a batch in order: the tool list first, then the ping."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'[{"jsonrpc":"2.0","id":7,"result":%s},{"jsonrpc":"2.0","id":7,"result":{}}]' % (
        httpx.Response(200, json=LISTING).content
    )
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(batch_upstream) as base:
        stdio = {"command": [sys.executable, UPSTREAM_SCRIPT], "timeout_seconds": 10}
        routes = [
            {
                "name": "relay",
                "path": "/relay/mcp",
                "upstream": {"url": base + "/mcp"},
                "expose": {"methods": ["read"]},
            },
            {"name": "hosted", "path": "/hosted/mcp", "upstream": stdio, "expose": {"tags": ["safe"]}},
        ]
        config = {"tags": {"safe": ["echo", "ask"]}, "routes": routes}
        with run_proxy(config, Path(tmp_path_factory.mktemp("ids"))) as running:
            yield running


def _session(client: httpx.Client, url: str) -> str:
    hello = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    opened = client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}, headers=HEADERS
    )
    session = opened.headers[SESSION_ID]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    client.post(url, json=initialized, headers={**HEADERS, SESSION_ID: session})
    return session


def test_a_batch_repeating_an_id_is_refused_on_a_relayed_route(proxy: Proxy) -> None:
    response = httpx.post(proxy.url("/relay/mcp"), json=TWINS, headers=HEADERS, timeout=10)
    assert "delete_contact" not in response.text
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


def test_a_batch_repeating_an_id_is_refused_on_a_hosted_route(proxy: Proxy) -> None:
    url = proxy.url("/hosted/mcp")
    with httpx.Client(timeout=10) as client:
        session = _session(client, url)
        response = client.post(url, json=TWINS, headers={**HEADERS, SESSION_ID: session})
    assert "crash" not in response.text
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


def test_reusing_the_id_of_a_call_in_flight_is_refused_on_a_hosted_route(proxy: Proxy) -> None:
    url = proxy.url("/hosted/mcp")
    with httpx.Client(timeout=10) as client:
        session = _session(client, url)
        headers = {**HEADERS, SESSION_ID: session}
        client.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers)
        ask = {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "ask", "arguments": {"question": "?"}},
        }
        with client.stream("POST", url, json=ask, headers=headers) as waiting:
            seen = ""
            for chunk in waiting.iter_text():
                seen += chunk
                if "elicitation/create" in seen:  # the call is now in flight, waiting for the user
                    break
            reused = httpx.post(
                url, json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, headers=headers
            )
    assert "crash" not in reused.text
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == -32600

"""What a rate limit counts and whose bucket it draws from, through a running proxy.

Each JSON-RPC request counts, in a batch too, per tool where the limit is per
tool; ``key: session`` trusts only session ids mcpfence has seen issued, and
traffic without one is counted per client (API token, else address), never in
one bucket shared by everyone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.admin.conftest import upstream_server
from tests.clients import MCP_HEADERS, open_raw_session, request, session_headers
from tests.servers import Proxy, run_proxy, serve_asgi

LIMIT = {"requests": 3, "per_seconds": 600}


@pytest.fixture(scope="module")
def stateless_url() -> Iterator[str]:
    app = upstream_server().streamable_http_app(stateless_http=True, json_response=True)
    with serve_asgi(app) as base:
        yield base + "/mcp"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, upstream_url: str, stateless_url: str) -> Iterator[Proxy]:
    def route(name: str, url: str, **limit: Any) -> dict[str, Any]:
        return {"name": name, "path": f"/{name}/mcp", "upstream": {"url": url}, "rate_limit": limit}

    routes = [
        route("per-session", upstream_url, **LIMIT, key="session"),
        route("per-tool", upstream_url, **LIMIT, key="session", per_tool=True),
        route("legacy", upstream_url, **LIMIT, key="session"),
        route("stateless", stateless_url, **LIMIT, key="session"),
        route("stateless-client", stateless_url, **LIMIT, key="client"),
    ]
    with run_proxy({"routes": routes}, tmp_path_factory.mktemp("proxy")) as running:
        yield running


def call(tool: str, id: int) -> dict[str, Any]:
    return request("tools/call", {"name": tool, "arguments": {}}, id)


@pytest.mark.anyio
async def test_every_request_in_a_batch_counts(proxy: Proxy) -> None:
    url = proxy.url("/per-session/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        batch = [request("ping", id=i) for i in range(5)]
        headers = {**session_headers(session_id), "mcp-protocol-version": "2025-03-26"}  # has batches
        response = await http.post(url, json=batch, headers=headers)
    assert response.status_code == 429
    assert response.headers["RateLimit-Limit"] == "3"


@asynccontextmanager
async def legacy_session(proxy: Proxy, route: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A legacy HTTP+SSE session (its stream open); yields a client and its messages URL."""
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", proxy.url(f"/{route}/mcp/sse")) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                yield http, proxy.base_url + line.removeprefix("data: ")
                return
        raise AssertionError("no endpoint event")


@pytest.mark.anyio
async def test_a_batch_on_the_legacy_messages_endpoint_counts_each_call(proxy: Proxy) -> None:
    async with legacy_session(proxy, "legacy") as (http, messages):
        response = await http.post(messages, json=[request("ping", id=i) for i in range(5)])
    assert response.status_code == 429


@pytest.mark.anyio
async def test_notifications_in_a_batch_do_not_count(proxy: Proxy) -> None:
    notification = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
    async with legacy_session(proxy, "legacy") as (http, messages):
        response = await http.post(messages, json=[request("ping", id=1), notification, notification])
    assert response.status_code == 202
    assert response.headers["RateLimit-Remaining"] == "2"


@pytest.mark.anyio
async def test_per_tool_limits_count_each_call_of_the_tool_in_a_batch(proxy: Proxy) -> None:
    async with legacy_session(proxy, "per-tool") as (http, messages):
        refused = await http.post(messages, json=[call("list_contacts", i) for i in range(4)])
        other_tool = await http.post(messages, json=[call("create_contact", 9)])
    assert refused.status_code == 429
    assert other_tool.status_code == 202


@pytest.mark.anyio
async def test_invented_session_ids_do_not_escape_a_session_limit(proxy: Proxy) -> None:
    url = proxy.url("/stateless/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        statuses = [
            (await http.post(url, json=request("ping", id=i), headers={"mcp-session-id": uuid.uuid4().hex}))
            .status_code
            for i in range(5)
        ]
    assert statuses.count(429) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["stateless", "stateless-client"])
async def test_session_less_clients_are_counted_apart(proxy: Proxy, route: str) -> None:
    url = proxy.url(f"/{route}/mcp")
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as first,
        httpx.AsyncClient(headers=MCP_HEADERS, timeout=10, transport=other) as second,
    ):
        statuses = [(await first.post(url, json=request("ping", id=i))).status_code for i in range(4)]
        assert statuses[-1] == 429
        assert (await second.post(url, json=request("ping"))).status_code == 200



"""The HTTP surface mcpfence serves for hosted sessions, seen with raw requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.clients import MCP_HEADERS, initialize_request, request, session_headers
from tests.servers import Proxy

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"


async def next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    """The fields of the next event among an SSE response's lines.

    Callers keep ``lines`` alive: dropping the iterator closes the stream, and a
    legacy session ends with its stream.
    """
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            return fields
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


async def test_legacy_stream_opens_with_an_endpoint_event_on_mcpfence(proxy: Proxy) -> None:
    async with httpx.AsyncClient(timeout=10) as http, http.stream("GET", proxy.url("/sse/mcp/sse")) as stream:
        event = await next_event(stream.aiter_lines())
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert event["event"] == "endpoint"
    assert event["data"].startswith("/sse/mcp/messages?session_id=")


async def test_legacy_message_for_an_unknown_session_is_404(proxy: Proxy) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(proxy.url("/stdio/mcp/messages?session_id=nope"), json=request("ping"))
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "Session not found"


async def test_hosted_session_needs_initialize_first(proxy: Proxy) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(proxy.url("/stdio/mcp"), json=request("tools/list"), headers=MCP_HEADERS)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32600
    assert "Mcp-Session-Id header is required" in answer.json()["error"]["message"]


async def test_hosted_session_is_gone_after_delete(proxy: Proxy) -> None:
    url = proxy.url("/stdio/mcp")
    async with httpx.AsyncClient(timeout=10, headers=MCP_HEADERS) as http:
        opened = await http.post(url, json=initialize_request())
        session_id = opened.headers["mcp-session-id"]
        deleted = await http.delete(url, headers=session_headers(session_id))
        after = await http.post(url, json=request("ping", id=2), headers=session_headers(session_id))
    assert opened.status_code == 200
    assert opened.json()["result"]["serverInfo"]["name"] == "transport-upstream"
    assert deleted.status_code == 200
    assert after.status_code == 404


@pytest.mark.parametrize("path", ["/stdio/mcp", "/streamable-http/mcp", "/sse/mcp/sse"])
async def test_a_rebound_host_name_is_refused(proxy: Proxy, path: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            proxy.url(path), json=initialize_request(), headers={**MCP_HEADERS, "host": "evil.example"}
        )
    assert answer.status_code == 421


async def test_a_loopback_host_name_on_any_port_is_accepted(proxy: Proxy) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            proxy.url("/streamable-http/mcp"),
            json=initialize_request(),
            headers={**MCP_HEADERS, "host": "localhost:1234"},
        )
    assert answer.status_code == 200


def stateless(method: str, params: dict[str, Any], id: int = 1) -> dict[str, Any]:
    """A 2026-07-28 request: no session, the envelope in ``_meta``."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return request(method, {**params, "_meta": meta}, id)


async def test_stateless_requests_to_a_stdio_upstream_need_no_session(proxy: Proxy) -> None:
    headers = {**MCP_HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "echo"}
    call = stateless("tools/call", {"name": "echo", "arguments": {"message": "no session"}})
    async with httpx.AsyncClient(timeout=10) as http:
        first, second = await asyncio.gather(
            http.post(proxy.url("/stdio/mcp"), json=call, headers=headers),
            http.post(proxy.url("/stdio/mcp"), json=call, headers=headers),
        )
    for answer in (first, second):
        assert answer.status_code == 200, answer.text
        assert "mcp-session-id" not in answer.headers
        assert answer.json()["id"] == 1
        assert answer.json()["result"]["content"][0]["text"] == "no session"


async def test_stateless_routing_headers_must_match_the_body(proxy: Proxy) -> None:
    headers = {**MCP_HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "tools/list"}
    call = stateless("tools/call", {"name": "echo", "arguments": {"message": "x"}})
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(proxy.url("/stdio/mcp"), json=call, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32020


async def test_a_stateless_request_without_its_method_header_is_refused(proxy: Proxy) -> None:
    headers = {**MCP_HEADERS, "mcp-protocol-version": MODERN}
    call = stateless("tools/call", {"name": "echo", "arguments": {"message": "x"}})
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(proxy.url("/stdio/mcp"), json=call, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32020
    assert "Mcp-Method header is required" in answer.json()["error"]["message"]


@pytest.mark.parametrize(("header", "status"), [("eu", 200), ("us", 400)], ids=["agrees", "disagrees"])
async def test_stateless_param_headers_must_match_the_arguments_even_with_no_http_upstream(
    proxy: Proxy, header: str, status: int
) -> None:
    """A stdio child sees no headers: mcpfence is the only one who can check them."""
    listed = {**MCP_HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "tools/list"}
    called = {**listed, "mcp-method": "tools/call", "mcp-name": "region", "mcp-param-region": header}
    call = stateless("tools/call", {"name": "region", "arguments": {"region": "eu"}})
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(proxy.url("/stdio/mcp"), json=stateless("tools/list", {}), headers=listed)
        answer = await http.post(proxy.url("/stdio/mcp"), json=call, headers=called)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["error"]["code"] == -32020


async def test_a_routing_header_sent_twice_is_a_mismatch(proxy: Proxy) -> None:
    call = stateless("tools/call", {"name": "echo", "arguments": {"message": "x"}})
    headers = [
        *MCP_HEADERS.items(),
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(proxy.url("/stdio/mcp"), json=call, headers=headers)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == -32020
    assert error["message"] == "mcp-method header appears more than once"


async def test_rate_limits_apply_to_hosted_sessions(proxy: Proxy) -> None:
    url = proxy.url("/stdio-limited/mcp")
    async with httpx.AsyncClient(timeout=10, headers=MCP_HEADERS) as http:
        opened = await http.post(url, json=initialize_request())
        headers = session_headers(opened.headers["mcp-session-id"])
        pings = [await http.post(url, json=request("ping", id=n), headers=headers) for n in (2, 3, 4)]
    statuses = [ping.status_code for ping in pings]
    assert statuses == [200, 200, 429]


async def test_rate_limits_apply_to_legacy_sessions(proxy: Proxy) -> None:
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", proxy.url("/stdio-limited/mcp/sse")) as stream,
    ):
        lines = stream.aiter_lines()
        endpoint = proxy.url((await next_event(lines))["data"])
        pings = [await http.post(endpoint, json=request("ping", id=n)) for n in (1, 2, 3)]
    statuses = [ping.status_code for ping in pings]
    assert statuses == [202, 202, 429]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/stdio/mcp", "GET, POST, DELETE"),
        ("POST", "/stdio/mcp/sse", "GET"),
        ("GET", "/stdio/mcp/messages", "POST"),
    ],
)
async def test_a_method_an_endpoint_does_not_serve_is_405_with_allow(
    proxy: Proxy, method: str, path: str, allow: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.request(method, proxy.url(path))
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow

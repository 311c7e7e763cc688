"""What mcpfence does with input a well-behaved client never sends, and with failing upstreams.

All through the proxy (docs/reference/errors.md): these are mcpfence's own answers,
so there is no direct-mode reference to compare with.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from mcp_types import TextContent
from mcp_types.jsonrpc import HEADER_MISMATCH, INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR

from tests.clients import (
    connect,
    error_code,
    modern_call,
    modern_headers,
    request,
    response_message,
)
from tests.e2e.protocol.topology import ALLOWED_ORIGIN, MAX_BODY_BYTES, UPSTREAM_KEY, route_path
from tests.e2e.protocol.upstream import Upstream, run_upstream
from tests.servers import Proxy

pytestmark = pytest.mark.anyio

TOOLS_LIST = json.dumps(request("tools/list")).encode()


def stateless_url(proxy: Proxy) -> str:
    """A route whose upstream answers any single request, no handshake needed."""
    return proxy.url(route_path("stateless-json"))


async def test_malformed_json_is_a_parse_error(proxy: Proxy, http: httpx.AsyncClient) -> None:
    response = await http.post(stateless_url(proxy), content=b'{"jsonrpc": "2.0", "id": 1,')
    assert error_code(response) == PARSE_ERROR


@pytest.mark.parametrize(
    "body",
    [
        b'{"hello": "world"}',
        b'"tools/list"',
        b'{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": 42}',
        b'{"jsonrpc": "2.0", "id": {"nested": true}, "method": "tools/list"}',
    ],
    ids=["no-jsonrpc-fields", "a-string", "wrong-version", "method-not-a-string", "id-an-object"],
)
async def test_a_body_that_is_not_a_json_rpc_message_is_an_invalid_request(
    proxy: Proxy, http: httpx.AsyncClient, body: bytes
) -> None:
    response = await http.post(stateless_url(proxy), content=body)
    assert error_code(response) == INVALID_REQUEST


async def test_duplicate_json_keys_are_an_invalid_request(
    proxy: Proxy, http: httpx.AsyncClient
) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "method": "tools/list"}'
    response = await http.post(stateless_url(proxy), content=body)
    assert error_code(response) == INVALID_REQUEST


async def test_a_tool_call_without_an_id_is_an_invalid_request_that_never_reaches_the_upstream(
    proxy: Proxy, http: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    body = b'{"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "echo", "arguments": {}}}'
    response = await http.post(stateless_url(proxy), content=body)
    assert error_code(response) == INVALID_REQUEST
    assert upstreams["stateless-json"].requests == []


async def test_a_batch_in_a_protocol_version_without_batches_is_an_invalid_request(
    proxy: Proxy, http: httpx.AsyncClient
) -> None:
    body = json.dumps([request("tools/list", id=1), request("tools/list", id=2)]).encode()
    headers = {"mcp-protocol-version": "2025-11-25"}
    response = await http.post(stateless_url(proxy), content=body, headers=headers)
    assert error_code(response) == INVALID_REQUEST


async def test_a_body_over_max_body_bytes_is_413(proxy: Proxy, http: httpx.AsyncClient) -> None:
    arguments = {"message": "x" * MAX_BODY_BYTES}
    body = json.dumps(request("tools/call", {"name": "echo", "arguments": arguments})).encode()
    response = await http.post(stateless_url(proxy), content=body)
    assert response.status_code == 413


async def test_a_body_at_max_body_bytes_is_served(proxy: Proxy, http: httpx.AsyncClient) -> None:
    envelope = json.dumps(request("tools/call", {"name": "echo", "arguments": {"message": ""}}))
    message = "x" * (MAX_BODY_BYTES - len(envelope))
    body = json.dumps(request("tools/call", {"name": "echo", "arguments": {"message": message}}))
    assert len(body) == MAX_BODY_BYTES
    response = await http.post(stateless_url(proxy), content=body.encode())
    assert response.status_code == 200
    assert response_message(response)["result"]["structuredContent"]["message"] == message


async def test_a_body_that_is_not_json_content_is_415(proxy: Proxy, http: httpx.AsyncClient) -> None:
    headers = {"content-type": "text/plain"}
    response = await http.post(stateless_url(proxy), content=TOOLS_LIST, headers=headers)
    assert response.status_code == 415


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost.evil.example"])
async def test_a_foreign_origin_is_403(proxy: Proxy, http: httpx.AsyncClient, origin: str) -> None:
    headers = {"origin": origin}
    response = await http.post(stateless_url(proxy), content=TOOLS_LIST, headers=headers)
    assert response.status_code == 403


@pytest.mark.parametrize(
    "origin",
    [None, ALLOWED_ORIGIN, "http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080"],
    ids=["none", "allowed", "localhost", "loopback-v4", "loopback-v6"],
)
async def test_no_origin_an_allowed_one_or_a_localhost_one_is_served(
    proxy: Proxy, http: httpx.AsyncClient, origin: str | None
) -> None:
    headers = {"origin": origin} if origin else {}
    response = await http.post(stateless_url(proxy), content=TOOLS_LIST, headers=headers)
    assert response.status_code == 200
    assert "tools" in response_message(response)["result"]


@pytest.mark.parametrize(
    ("method", "name"), [("tools/list", "echo"), ("tools/call", "fail")], ids=["method", "name"]
)
async def test_routing_headers_that_disagree_with_the_body_are_400_header_mismatch(
    proxy: Proxy, http: httpx.AsyncClient, method: str, name: str
) -> None:
    call = modern_call("echo", {"message": "hi"})
    response = await http.post(stateless_url(proxy), json=call, headers=modern_headers(method, name))
    assert response.status_code == 400
    assert error_code(response) == HEADER_MISMATCH


async def test_a_header_mismatch_error_answers_the_request_id(proxy: Proxy, http: httpx.AsyncClient) -> None:
    call = modern_call("echo", {"message": "hi"})
    response = await http.post(stateless_url(proxy), json=call, headers=modern_headers("tools/list", "echo"))
    assert response_message(response)["id"] == call["id"]


async def test_routing_headers_that_disagree_with_the_body_never_reach_the_upstream(
    proxy: Proxy, http: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    call = modern_call("echo", {"message": "hi"})
    await http.post(stateless_url(proxy), json=call, headers=modern_headers("tools/call", "fail"))
    assert upstreams["stateless-json"].requests == []


async def test_an_unreachable_upstream_is_an_internal_error_and_the_proxy_recovers(
    proxy: Proxy, http: httpx.AsyncClient, flaky_port: int
) -> None:
    url = proxy.url(route_path("flaky"))
    down = response_message(await http.post(url, content=TOOLS_LIST))
    assert down["id"] == 1
    assert down["error"]["code"] == INTERNAL_ERROR
    assert "upstream" in down["error"]["message"].lower()
    with run_upstream(json_response=True, stateless=True, port=flaky_port):
        back = response_message(await http.post(url, content=TOOLS_LIST))
    assert "tools" in back["result"]


async def test_an_upstream_slower_than_timeout_seconds_is_an_internal_error(
    proxy: Proxy, http: httpx.AsyncClient, upstreams: dict[str, Upstream]
) -> None:
    url = proxy.url(route_path("impatient"))
    call = request("tools/call", {"name": "slow_progress", "arguments": {"steps": 1, "delay": 0}})
    try:
        with anyio.fail_after(10):
            timed_out = response_message(await http.post(url, json=call))
    finally:
        upstreams["stateless-json"].client_saw_progress.set()  # let the tool finish
    assert timed_out["id"] == 1
    assert timed_out["error"]["code"] == INTERNAL_ERROR
    assert timed_out["error"]["message"]


CLIENT_CREDENTIALS = {"authorization": "Bearer client-token", "cookie": "sid=client-cookie"}


async def test_client_authorization_and_cookies_never_reach_the_upstream(
    proxy: Proxy, upstreams: dict[str, Upstream]
) -> None:
    async with connect(proxy.url(route_path("sse")), headers=CLIENT_CREDENTIALS) as conn:
        await conn.session.call_tool("whoami", {})
    received = upstreams["sse"].requests
    assert len(received) >= 3  # initialize, initialized, tools/call (and the GET stream, DELETE)
    assert [r for r in received if r.header("authorization") or r.header("cookie")] == []


async def test_upstream_headers_reach_the_upstream_with_variables_expanded(
    proxy: Proxy, upstreams: dict[str, Upstream]
) -> None:
    async with connect(proxy.url(route_path("sse")), headers=CLIENT_CREDENTIALS) as conn:
        result = await conn.session.call_tool("whoami", {})
    assert isinstance(result.content[0], TextContent)
    assert [headers.get("x-upstream-key") for headers in upstreams["sse"].tool_headers] == [
        UPSTREAM_KEY
    ]
    assert {r.header("x-upstream-key") for r in upstreams["sse"].requests} == {UPSTREAM_KEY}


async def test_the_upstream_sees_its_own_host(proxy: Proxy, upstreams: dict[str, Upstream]) -> None:
    upstream = upstreams["sse"]
    async with connect(proxy.url(route_path("sse"))) as conn:
        await conn.session.call_tool("echo", {"message": "hi"})
    assert {r.header("host") for r in upstream.requests} == {urlsplit(upstream.base_url).netloc}

"""Stateless (2026-07-28) answers as JSON lines, and header values with whitespace around them.

The conformance suite's reference server answers ``subscriptions/listen`` and streaming tool
calls with a chunked ``application/json`` body, one JSON-RPC message per line, and compares
header values without the whitespace HTTP puts outside them. The "stateless-lines" upstream
answers the same way; each test runs direct and through mcpfence.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import httpx
import pytest

from tests.clients import (
    MCP_HEADERS,
    MODERN_VERSION,
    modern_call,
    modern_headers,
    modern_request,
    next_sse_events,
    response_message,
)
from tests.e2e.protocol.topology import IMPATIENT_TIMEOUT_SECONDS, Target, route_path
from tests.e2e.protocol.upstream import Upstream
from tests.servers import Proxy

pytestmark = pytest.mark.anyio

LINES = "stateless-lines"
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"


def listen_request(id: int) -> dict[str, Any]:
    return modern_request("subscriptions/listen", {"notifications": {"toolsListChanged": True}}, id)


def listen_headers() -> dict[str, str]:
    return {"mcp-protocol-version": MODERN_VERSION, "mcp-method": "subscriptions/listen"}


def call_with_progress(tool: str, token: str) -> dict[str, Any]:
    call = modern_call(tool, {})
    call["params"]["_meta"]["progressToken"] = token
    return call


def line_messages(response: httpx.Response) -> list[dict[str, Any]]:
    """Every message of a whole JSON-lines body."""
    return [json.loads(line) for line in response.text.split("\n") if line.strip()]


async def next_message(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next message of a JSON-lines stream that may stay open after it."""
    async for line in lines:
        if line.strip():
            message: dict[str, Any] = json.loads(line)
            return message
    raise AssertionError("the stream ended")


async def change_tools(http: httpx.AsyncClient, url: str) -> None:
    changed = await http.post(
        url, json=modern_call("change_tools", {}), headers=modern_headers("tools/call", "change_tools")
    )
    assert changed.status_code == 200, changed.text


async def test_a_streamed_call_sends_each_line_as_it_happens(target: Target, http: httpx.AsyncClient) -> None:
    call = modern_call("slow_progress", {"steps": 2, "delay": 0})
    call["params"]["_meta"]["progressToken"] = "p-1"
    headers = modern_headers("tools/call", "slow_progress")
    with anyio.fail_after(10):
        async with http.stream("POST", target.url(LINES), json=call, headers=headers) as response:
            assert response.headers["content-type"].startswith("application/json")
            lines = response.aiter_lines()
            first = await next_message(lines)
            # The tool holds its result until the client confirms it saw this line.
            target.upstream(LINES).client_saw_progress.set()
            rest = [json.loads(line) async for line in lines if line.strip()]
    assert first["method"] == "notifications/progress"
    assert first["params"]["progressToken"] == "p-1"
    assert rest[-1]["result"]["content"][0]["text"] == "done after 2 steps; client saw progress first: True"


async def test_listen_acknowledges_first_then_relays_each_list_change(
    target: Target, http: httpx.AsyncClient
) -> None:
    url = target.url(LINES)
    with anyio.fail_after(10):
        async with http.stream("POST", url, json=listen_request(41), headers=listen_headers()) as stream:
            assert stream.headers["content-type"].startswith("application/json")
            lines = stream.aiter_lines()
            acknowledged = await next_message(lines)
            await change_tools(http, url)
            changed = await next_message(lines)
    assert acknowledged["method"] == "notifications/subscriptions/acknowledged"
    assert acknowledged["params"]["_meta"][SUBSCRIPTION_ID] == 41
    assert changed["method"] == "notifications/tools/list_changed"
    assert changed["params"]["_meta"][SUBSCRIPTION_ID] == 41


async def test_a_streamed_call_that_asks_for_input_completes_once_answered(
    target: Target, http: httpx.AsyncClient
) -> None:
    url, headers = target.url(LINES), modern_headers("tools/call", "confirm")
    asked = line_messages(await http.post(url, json=call_with_progress("confirm", "c-1"), headers=headers))
    retry = call_with_progress("confirm", "c-2")
    retry["params"]["inputResponses"] = {"who": {"action": "accept", "content": {"name": "Ada"}}}
    answered = line_messages(await http.post(url, json=retry, headers=headers))
    assert [message.get("method") for message in asked] == ["notifications/progress", None]
    assert asked[-1]["result"]["resultType"] == "input_required"
    assert asked[-1]["result"]["inputRequests"]["who"]["method"] == "elicitation/create"
    assert answered[-1]["result"]["content"][0]["text"] == "confirmed by Ada"


async def test_a_header_value_is_read_without_the_whitespace_around_it(target: Target) -> None:
    call = modern_call("echo", {"message": "hi"})
    headers = {**MCP_HEADERS, **modern_headers("tools/call", "echo"), "mcp-name": "  echo\t"}
    # aiohttp sends the padding as given; httpx refuses to.
    async with (
        aiohttp.ClientSession() as client,
        client.post(target.url(LINES), data=json.dumps(call), headers=headers) as response,
    ):
        status, body = response.status, await response.text()
    assert status == 200, body
    assert '"result"' in body


async def test_the_upstream_receives_header_values_without_their_whitespace(
    proxy: Proxy, upstreams: dict[str, Upstream]
) -> None:
    call = modern_call("echo", {"message": "hi"})
    headers = {**MCP_HEADERS, **modern_headers("tools/call", "echo"), "mcp-name": " echo  "}
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            proxy.url(route_path("stateless-json")), data=json.dumps(call), headers=headers
        ) as response,
    ):
        assert response.status == 200, await response.text()
    (received,) = upstreams["stateless-json"].requests
    assert received.header("mcp-name") == "echo"


async def test_a_listen_stream_outlives_the_route_timeout(
    proxy: Proxy, upstreams: dict[str, Upstream], http: httpx.AsyncClient
) -> None:
    url = proxy.url(route_path("impatient"))  # its SDK upstream streams listen answers as SSE
    with anyio.fail_after(10):
        async with http.stream("POST", url, json=listen_request(7), headers=listen_headers()) as stream:
            # Past the deadline a tool call on this route would have; a listen stream has none.
            await anyio.sleep(IMPATIENT_TIMEOUT_SECONDS * 1.5)
            await change_tools(http, upstreams["stateless-json"].url)
            acknowledged, changed = await next_sse_events(stream, 2)
    assert json.loads(acknowledged["data"])["method"] == "notifications/subscriptions/acknowledged"
    assert json.loads(changed["data"])["method"] == "notifications/tools/list_changed"


async def test_a_plain_stateless_answer_stays_one_json_document(
    target: Target, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        target.url("stateless-json"),
        json=modern_call("echo", {"message": "hi"}),
        headers=modern_headers("tools/call", "echo"),
    )
    assert response.headers["content-type"].startswith("application/json")
    assert "content-length" in response.headers  # a whole document, not a stream
    assert response_message(response)["result"]["structuredContent"]["message"] == "hi"


async def test_a_stateless_answer_slower_than_timeout_seconds_is_an_internal_error(
    proxy: Proxy, upstreams: dict[str, Upstream], http: httpx.AsyncClient
) -> None:
    call = modern_call("slow_progress", {"steps": 1, "delay": 0})
    try:
        with anyio.fail_after(10):
            response = await http.post(
                proxy.url(route_path("impatient")),
                json=call,
                headers=modern_headers("tools/call", "slow_progress"),
            )
    finally:
        upstreams["stateless-json"].client_saw_progress.set()  # let the tool finish
    assert response.status_code == 504
    assert response_message(response)["error"]["code"] == -32603

"""Sessions mcpfence hosts (here: a stdio upstream) reached through any replica."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.clients import (
    MCP_HEADERS,
    initialize_request,
    request,
    response_message,
    session_headers,
)
from tests.cluster.redis_server import RedisServer
from tests.cluster.topology import CLUSTER_SECRET, Replica, replicas
from tests.transport.conftest import stdio_upstream

pytestmark = pytest.mark.slow  # see docs/how-to/test.md

PATH = "/local/mcp"
LIMITED = "/limited/mcp"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, module_redis: RedisServer) -> Iterator[list[Replica]]:
    """Two replicas; the last test of this module stops the first."""
    limit = {"requests": 2, "per_seconds": 600, "key": "client"}
    routes = [
        {"name": "local", "path": PATH, "upstream": stdio_upstream()},
        {"name": "limited", "path": LIMITED, "upstream": stdio_upstream(), "rate_limit": limit},
    ]
    directory = tmp_path_factory.mktemp("hosted")
    with replicas(2, directory, module_redis.url, routes, internal=True) as running:
        yield running


def call(tool: str, arguments: dict[str, object], id: int) -> dict[str, object]:
    return request("tools/call", {"name": tool, "arguments": arguments}, id)


async def open_session(http: httpx.AsyncClient, replica: Replica) -> str:
    opened = await http.post(replica.url(PATH), json=initialize_request())
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await http.post(replica.url(PATH), json=notification, headers=session_headers(session_id))
    return session_id


def text(response: httpx.Response) -> str:
    return str(response_message(response)["result"]["content"][0]["text"])


@pytest.mark.anyio
async def test_a_hosted_session_continues_on_another_replica(pair: list[Replica]) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=30) as http:
        session_id = await open_session(http, pair[0])
        headers = session_headers(session_id)
        echoed = await http.post(pair[1].url(PATH), json=call("echo", {"message": "hi"}, 2), headers=headers)
        pids = [
            text(await http.post(replica.url(PATH), json=call("pid", {}, 10 + i), headers=headers))
            for i, replica in enumerate(pair)
        ]
    assert text(echoed) == "hi"
    assert pids[0] == pids[1]  # one child process: the owner's


@asynccontextmanager
async def legacy_stream(http: httpx.AsyncClient, replica: Replica) -> AsyncIterator[tuple[str, object]]:
    async with http.stream("GET", replica.url(f"{PATH}/sse")) as stream:
        lines = stream.aiter_lines()
        async for line in lines:
            if line.startswith("data: "):
                yield line.removeprefix("data: "), lines
                return


@pytest.mark.anyio
async def test_a_legacy_sse_client_posts_through_another_replica(pair: list[Replica]) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        legacy_stream(http, pair[0]) as (endpoint, lines),
    ):
        posted = await http.post(pair[1].url(endpoint), json=initialize_request())
        assert posted.status_code == 202
        async for line in lines:  # type: ignore[attr-defined]
            if line.startswith("data: ") and '"result"' in line:
                assert "serverInfo" in line
                break


def test_the_internal_listener_refuses_requests_without_the_secret(pair: list[Replica]) -> None:
    url = f"http://127.0.0.1:{pair[0].internal_port}{PATH}"
    refused = httpx.post(url, json=initialize_request(), headers=MCP_HEADERS)
    assert refused.status_code == 403
    headers = {**MCP_HEADERS, "x-mcpfence-cluster-secret": CLUSTER_SECRET}
    assert httpx.post(url, json=initialize_request(), headers=headers).status_code == 200


@pytest.mark.anyio
async def test_a_forwarded_request_is_counted_for_its_client_not_the_forwarding_replica(
    pair: list[Replica],
) -> None:
    owner, forwarder = pair[0].url(LIMITED), pair[1].url(LIMITED)
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(headers=MCP_HEADERS, timeout=30) as first,
        httpx.AsyncClient(headers=MCP_HEADERS, timeout=30, transport=elsewhere) as second,
    ):
        # The second client opens its session (1 of its 2), then the first spends its own two.
        opened = await second.post(owner, json=initialize_request())
        headers = session_headers(opened.headers["mcp-session-id"])
        assert [(await first.post(owner, json=initialize_request())).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        # Through the other replica, the owner still counts the second client's own bucket.
        forwarded = await second.post(forwarder, json=request("ping", id=2), headers=headers)
    assert forwarded.status_code == 200


@pytest.mark.anyio
async def test_when_the_owner_dies_its_sessions_answer_404(pair: list[Replica]) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=30) as http:
        session_id = await open_session(http, pair[0])
        pair[0].proxy.stop()
        headers = session_headers(session_id)
        gone = await http.post(pair[1].url(PATH), json=call("pid", {}, 3), headers=headers)
        assert gone.status_code == 404
        assert (await http.post(pair[1].url(PATH), json=initialize_request())).status_code == 200

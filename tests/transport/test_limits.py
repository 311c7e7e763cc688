"""Resource bounds: what clients hold open cannot starve the upstream of new sessions.

Relayed GET streams are long-lived and each holds a pooled upstream connection:
they are capped per session, per client and per route, below the pool size so
POSTs always find a connection, and end when idle. Hosted sessions each start
their own stdio child: they are capped per route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.clients import (
    MCP_HEADERS,
    initialize_request,
    open_raw_session,
    response_message,
    session_headers,
)
from tests.e2e.protocol.upstream import MemoryEventStore
from tests.servers import Proxy, run_proxy, serve_asgi
from tests.transport.conftest import stdio_upstream
from tests.transport.upstream import build_server

pytestmark = pytest.mark.anyio


def _route(name: str, upstream: dict[str, Any], **limits: Any) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": upstream, "limits": limits}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with (
        serve_asgi(build_server().streamable_http_app()) as base,
        serve_asgi(build_server().streamable_http_app(event_store=MemoryEventStore())) as resumable,
    ):
        http = {"url": base + "/mcp", "timeout_seconds": 10}
        routes = [
            _route("pool", http, connections=3, streams=2, streams_per_client=5),
            _route("client", http, streams_per_client=1),
            _route("idle", http, stream_idle_seconds=0.2),
            _route("children", stdio_upstream(), sessions=2),
            _route("resumable", {"url": resumable + "/mcp", "timeout_seconds": 10}),
        ]
        with run_proxy({"routes": routes}, Path(tmp_path_factory.mktemp("limits"))) as running:
            yield running


@asynccontextmanager
async def _listening(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> AsyncIterator[httpx.Response]:
    """A GET stream, held open while the block runs."""
    async with client.stream("GET", url, headers={**headers, "accept": "text/event-stream"}) as response:
        yield response


async def _echo(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """A tools/call of ``echo``, whose answer says "hi"."""
    body = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "hi"}},
    }
    return await client.post(url, json=body, headers=headers)


async def test_streams_past_the_routes_cap_are_refused_and_posts_still_get_a_connection(proxy: Proxy) -> None:
    url = proxy.url("/pool/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as client, AsyncExitStack() as streams:
        for _ in range(2):
            held = await streams.enter_async_context(
                _listening(client, url, session_headers(await open_raw_session(client, url)))
            )
            assert held.status_code == 200
        async with _listening(client, url, session_headers(await open_raw_session(client, url))) as refused:
            assert refused.status_code == 503
            assert "retry-after" in refused.headers
        headers = session_headers(
            await open_raw_session(client, url)
        )  # a new session, and a call, while the streams stay open
        assert response_message(await _echo(client, url, headers))["result"]["content"][0]["text"] == "hi"


async def test_a_client_past_its_stream_cap_is_refused(proxy: Proxy) -> None:
    url = proxy.url("/client/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as client:
        async with _listening(client, url, session_headers(await open_raw_session(client, url))) as held:
            assert held.status_code == 200
            async with _listening(
                client, url, session_headers(await open_raw_session(client, url))
            ) as refused:
                assert refused.status_code == 429
        async with _listening(
            client, url, session_headers(await open_raw_session(client, url))
        ) as again:  # the slot came back
            assert again.status_code == 200


async def test_a_second_stream_on_one_session_is_refused(proxy: Proxy) -> None:
    url = proxy.url("/pool/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as client:
        headers = session_headers(await open_raw_session(client, url))
        async with _listening(client, url, headers) as held, _listening(client, url, headers) as refused:
            assert held.status_code == 200
            assert refused.status_code == 409


async def test_resuming_a_stream_is_not_a_second_stream_of_the_session(proxy: Proxy) -> None:
    url = proxy.url("/resumable/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as client:
        headers = session_headers(await open_raw_session(client, url))
        answered = await _echo(client, url, headers)
        priming = next(line[4:] for line in answered.text.splitlines() if line.startswith("id: "))
        async with _listening(client, url, headers) as held:
            assert held.status_code == 200
            async with _listening(client, url, {**headers, "last-event-id": priming}) as resumed:
                assert resumed.status_code == 200
                with anyio.fail_after(10):
                    async for chunk in resumed.aiter_text():
                        if '"hi"' in chunk:
                            break


async def test_an_idle_stream_is_ended(proxy: Proxy) -> None:
    url = proxy.url("/idle/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as client:
        headers = session_headers(await open_raw_session(client, url))
        async with _listening(client, url, headers) as stream:
            assert stream.status_code == 200
            with anyio.fail_after(10):
                async for _ in stream.aiter_bytes():
                    pass  # the body ends: mcpfence closed the idle stream


async def test_sessions_that_start_children_are_capped_per_route(proxy: Proxy) -> None:
    url = proxy.url("/children/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as client:
        first = session_headers(await open_raw_session(client, url))
        session_headers(await open_raw_session(client, url))
        refused = await client.post(url, json=initialize_request())
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == -32603
        await client.delete(url, headers=first)
        assert (await client.post(url, json=initialize_request())).status_code == 200

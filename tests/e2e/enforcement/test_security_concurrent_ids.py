"""Two requests in flight under one id each get their own answer, on a relayed route.

An SDK server keys a session's answer streams by ``str(id)``: two concurrent POSTs
reusing an id (``7`` and ``7``, or ``7`` and ``"7"``) would have one call's result
arrive on the other's stream, and be recorded as the other call's result, which a
history-based policy then trusts. mcpfence gives every forwarded request an id of
its own upstream and maps the answer back, so an answer only ever reaches its request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from tests.clients import (
    MCP_HEADERS,
    open_raw_session,
    response_message,
    session_headers,
)
from tests.servers import Proxy, run_proxy, serve_asgi

pytestmark = pytest.mark.anyio


class Gates:
    """Calls of ``hold`` that wait until the test lets each one return."""

    def __init__(self) -> None:
        self.started = {name: threading.Event() for name in ("a", "b")}
        self.release = {name: threading.Event() for name in ("a", "b")}
        self.cancelled = threading.Event()

    def server(self) -> MCPServer:
        server = MCPServer("gates")

        @server.tool()
        async def hold(name: str) -> str:
            self.started[name].set()
            await anyio.to_thread.run_sync(self.release[name].wait, 10)
            return f"held {name}"

        @server.tool()
        async def wait_for_cancel() -> str:
            self.started["a"].set()
            try:
                await anyio.sleep_forever()
            finally:
                self.cancelled.set()
            return "never"

        return server

    def reset(self) -> None:
        for event in [*self.started.values(), *self.release.values(), self.cancelled]:
            event.clear()


@pytest.fixture(scope="module")
def gates() -> Gates:
    return Gates()


@pytest.fixture(scope="module")
def proxy(gates: Gates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(gates.server().streamable_http_app()) as base:
        route = {
            "name": "gates",
            "path": "/gates/mcp",
            "upstream": {"url": base + "/mcp", "timeout_seconds": 10},
        }
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("ids"))) as running:
            yield running


async def _started(event: threading.Event) -> None:
    with anyio.fail_after(10):
        while not event.is_set():
            await anyio.sleep(0.01)


@pytest.mark.parametrize("second_id", [7, "7"], ids=["same", "same-as-string"])
async def test_concurrent_calls_under_one_id_each_get_their_own_answer(
    proxy: Proxy, gates: Gates, second_id: Any
) -> None:
    gates.reset()
    url = proxy.url("/gates/mcp")
    answers: dict[str, dict[str, Any]] = {}

    async def call(client: httpx.AsyncClient, headers: dict[str, str], name: str, request_id: Any) -> None:
        params = {"name": "hold", "arguments": {"name": name}}
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        answers[name] = response_message(await client.post(url, json=body, headers=headers))

    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=20) as client:
        headers = session_headers(await open_raw_session(client, url))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, client, headers, "a", 7)
            await _started(gates.started["a"])
            tasks.start_soon(call, client, headers, "b", second_id)
            await _started(gates.started["b"])
            gates.release["a"].set()  # a's answer comes first, while b's stream is the latest under the id
            with anyio.fail_after(10):
                while "a" not in answers and "b" not in answers:
                    await anyio.sleep(0.01)
            gates.release["b"].set()
    assert answers["a"]["id"] == 7
    assert answers["a"]["result"]["content"][0]["text"] == "held a"
    assert answers["b"]["id"] == second_id
    assert answers["b"]["result"]["content"][0]["text"] == "held b"


async def test_a_cancellation_naming_the_clients_id_cancels_the_relayed_request(
    proxy: Proxy, gates: Gates
) -> None:
    gates.reset()
    url = proxy.url("/gates/mcp")
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "wait_for_cancel"}}
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=20) as client:
        headers = session_headers(await open_raw_session(client, url))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(functools.partial(client.post, url, json=call, headers=headers))
            await _started(gates.started["a"])
            await client.post(url, json=cancel, headers=headers)
            await _started(gates.cancelled)
            tasks.cancel_scope.cancel()
    assert gates.cancelled.is_set()

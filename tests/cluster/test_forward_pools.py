"""Forwarding keeps one connection pool per owner replica, and no more than are in use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mcpfence.cluster.forward import OwnerForwarding

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def forwarding() -> OwnerForwarding:
    route: Any = object()  # never reached: only the pools are exercised
    replicas: Any = object()
    return OwnerForwarding(route, replicas, "secret", main_is_hosted=False, max_body_bytes=1024)


async def test_a_pool_without_connections_is_dropped_when_another_owner_appears() -> None:
    forward = forwarding()
    gone = forward._pool("http://10.0.0.1:9100")
    forward._pool("http://10.0.0.2:9100")
    assert forward._pool("http://10.0.0.1:9100") is not gone


async def test_a_pool_with_a_connection_in_use_is_kept() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    forward = forwarding()
    busy = forward._pool(base)
    waiting = asyncio.ensure_future(busy.request("GET", base + "/mcp", {}))
    try:
        while busy.connections == 0:
            await asyncio.sleep(0.01)
        forward._pool("http://10.0.0.2:9100")
        assert forward._pool(base) is busy
    finally:
        waiting.cancel()
        server.close()

"""One mcpfence in front of one upstream per transport, shared by the module's tests.

Starting servers dominates the suite's time, so they start once per module;
every test opens its own client sessions.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.servers import Proxy, run_proxy, serve_asgi
from tests.transport.upstream import build_server

UPSTREAM_SCRIPT = str(Path(__file__).with_name("upstream.py"))
UPSTREAMS = ("streamable-http", "sse", "stdio")
DOWNSTREAMS = ("streamable-http", "legacy-sse")
DENY_ECHO = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: no-forbidden-echo}
spec:
  match: {tools: [echo]}
  validations:
    - expression: "!args.message.contains('forbidden')"
      message: echo must not say forbidden
"""


def stdio_upstream(**extra: Any) -> dict[str, Any]:
    """An ``upstream`` config block that runs the test server as a child."""
    return {"command": [sys.executable, UPSTREAM_SCRIPT], "timeout_seconds": 10, **extra}


def proxy_config(upstream_urls: dict[str, str]) -> dict[str, Any]:
    return {
        "policies": ["policies/"],
        "routes": [
            {
                "name": "streamable-http",
                "path": "/streamable-http/mcp",
                "upstream": {"url": upstream_urls["streamable-http"], "timeout_seconds": 10},
            },
            {
                "name": "streamable-http-json",
                "path": "/streamable-http-json/mcp",
                "upstream": {"url": upstream_urls["streamable-http-json"], "timeout_seconds": 10},
            },
            {
                "name": "sse",
                "path": "/sse/mcp",
                "upstream": {"url": upstream_urls["sse"], "transport": "sse", "timeout_seconds": 10},
            },
            {
                "name": "stdio",
                "path": "/stdio/mcp",
                "upstream": stdio_upstream(env={"CONFIGURED": "${CONFIGURED_VALUE}"}),
            },
            {"name": "stdio-shared", "path": "/stdio-shared/mcp", "upstream": stdio_upstream(shared=True)},
            {
                "name": "stdio-limited",
                "path": "/stdio-limited/mcp",
                "upstream": stdio_upstream(),
                "rate_limit": {"requests": 2, "per_seconds": 3600},
            },
        ],
    }


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    directory = tmp_path_factory.mktemp("transports")
    (directory / "policies").mkdir()
    (directory / "policies" / "echo.yaml").write_text(DENY_ECHO)
    with (
        serve_asgi(build_server().sse_app()) as sse_base,
        serve_asgi(build_server().streamable_http_app()) as http_base,
        serve_asgi(build_server().streamable_http_app(json_response=True)) as json_base,
    ):
        urls = {
            "sse": sse_base + "/sse",
            "streamable-http": http_base + "/mcp",
            "streamable-http-json": json_base + "/mcp",
        }
        env = {"CONFIGURED_VALUE": "yes", "MCPFENCE_SECRET": "must-not-leak"}
        with run_proxy(proxy_config(urls), directory, env) as running:
            yield running


@asynccontextmanager
async def open_session(
    proxy: Proxy, route: str, downstream: str, **callbacks: Any
) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session with ``route`` through mcpfence, over ``downstream``."""
    base = proxy.url(f"/{route}/mcp")
    transport: AbstractAsyncContextManager[Any]
    if downstream == "legacy-sse":
        transport = sse_client(base + "/sse", timeout=10)
    else:
        transport = streamable_http_client(base)
    async with (
        transport as (read, write),
        ClientSession(read, write, read_timeout_seconds=15, **callbacks) as session,
    ):
        await session.initialize()
        yield session

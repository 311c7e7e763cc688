"""Legacy SSE upstreams that misbehave in ways the SDK's own server never would."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from tests.clients import MCP_HEADERS, initialize_request
from tests.servers import run_proxy, serve_asgi


async def foreign_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """An SSE server whose ``endpoint`` event points at another origin."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    event = b"event: endpoint\ndata: http://elsewhere.example/messages?session_id=1\n\n"
    await send({"type": "http.response.body", "body": event, "more_body": True})
    with anyio.move_on_after(5):
        await receive()  # until the client goes away
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_an_endpoint_on_another_origin_is_refused(tmp_path: Path) -> None:
    with serve_asgi(foreign_endpoint) as base:
        upstream = {"url": base + "/sse", "transport": "sse", "timeout_seconds": 5}
        config = {"routes": [{"name": "rogue", "path": "/rogue/mcp", "upstream": upstream}]}
        with run_proxy(config, tmp_path) as proxy:
            answer = httpx.post(proxy.url("/rogue/mcp"), json=initialize_request(), headers=MCP_HEADERS)
    error = answer.json()["error"]
    assert error["code"] == -32603
    assert "is on another origin" in error["message"]

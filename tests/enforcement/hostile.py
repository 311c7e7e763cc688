"""Misbehaving upstreams for the fail-closed tests: canned answers behind a read-only route."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tests.protocol.clients import MCP_HEADERS
from tests.servers import Proxy

# A tool list holding one tool a read-only route shows and one it must hide.
LISTING = (
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"list_contacts","inputSchema":{}},'
    b'{"name":"delete_contact","inputSchema":{}}]}}'
)
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}

Asgi = Callable[[dict[str, Any], Any, Any], Any]


def canned_upstream(
    content_type: bytes, bodies: Mapping[str, bytes], status: int = 200, echo_id: bool = False
) -> Asgi:
    """An ASGI app answering every POST to a path in ``bodies`` with that body, as is.

    ``echo_id``: the canned ``"id":1`` becomes the id the request came with (mcpfence
    sends ids of its own upstream), so the canned answer answers the request.
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = b""
        while True:
            message = await receive()
            request += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = bodies[scope["path"]]
        if echo_id:
            own = json.dumps(json.loads(request)["id"]).encode()
            body = re.sub(rb'"id":\s*1\b', b'"id": ' + own, body)
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def read_only_route(name: str, url: str) -> dict[str, Any]:
    """A route that exposes only read tools: the filter a hostile answer tries to get around."""
    return {"name": name, "path": f"/{name}/mcp", "upstream": {"url": url}, "expose": {"methods": ["read"]}}


def list_tools(proxy: Proxy, path: str) -> httpx.Response:
    return httpx.post(proxy.url(path), json=TOOLS_LIST, headers=MCP_HEADERS, timeout=10)

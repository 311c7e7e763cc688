"""Misbehaving upstreams for the fail-closed tests: canned answers behind a read-only route."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from mcpfence.transport.downstream.request_ids import own_id
from tests.clients import MCP_HEADERS
from tests.servers import Proxy

# A tool list holding one tool a read-only route shows and one it must hide.
LISTING = (
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"list_contacts","inputSchema":{}},'
    b'{"name":"delete_contact","inputSchema":{}}]}}'
)
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}

Asgi = Callable[[dict[str, Any], Any, Any], Any]


def read_body(receive: Any) -> Any:
    """The whole request body of an ASGI exchange."""

    async def read() -> bytes:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    return read()


_CANNED_ID = re.compile(rb'"id":\s*(-?\d+|"[^"\\]*")')


def answering(request: bytes, body: bytes) -> bytes:
    """``body`` with each canned id that names a request's own id replaced by the id the
    request came with: mcpfence sends ids of its own upstream, which a real server echoes."""
    try:
        sent = json.loads(request)
    except ValueError:
        return body
    given = {}
    for message in sent if isinstance(sent, list) else [sent]:
        upstream = message.get("id") if isinstance(message, dict) else None
        own = own_id(upstream)
        if own is not None:
            given[json.dumps(own)] = json.dumps(upstream).encode()

    def swap(match: re.Match[bytes]) -> bytes:
        upstream = given.get(json.dumps(json.loads(match.group(1))))
        return b'"id": ' + upstream if upstream is not None else match.group(0)

    return _CANNED_ID.sub(swap, body)


def canned_upstream(
    content_type: bytes, bodies: Mapping[str, bytes], status: int = 200, echo_id: bool = False
) -> Asgi:
    """An ASGI app answering every POST to a path in ``bodies`` with that body, as is.

    ``echo_id``: the canned answer answers the request (see :func:`answering`).
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = await read_body(receive)
        body = answering(request, bodies[scope["path"]]) if echo_id else bodies[scope["path"]]
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def read_only_route(name: str, url: str) -> dict[str, Any]:
    """A route that exposes only read tools: the filter a hostile answer tries to get around."""
    return {"name": name, "path": f"/{name}/mcp", "upstream": {"url": url}, "expose": {"methods": ["read"]}}


def list_tools(proxy: Proxy, path: str) -> httpx.Response:
    return httpx.post(proxy.url(path), json=TOOLS_LIST, headers=MCP_HEADERS, timeout=10)

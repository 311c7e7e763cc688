"""An upstream mcpfence cannot read is never relayed unchecked (fail closed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.protocol.clients import MCP_HEADERS
from tests.servers import Proxy, run_proxy, serve_asgi

# A tools/list answer with a duplicate key: strict parsers refuse it, lenient ones
# keep the last "tools", which lists a write tool a read-only route must hide.
AMBIGUOUS_LIST = (
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"list_contacts","inputSchema":{}}],'
    b'"tools":[{"name":"delete_contact","inputSchema":{}}]}}'
)


async def sse_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every POST with one SSE event carrying ``AMBIGUOUS_LIST``."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"id: e1\ndata: " + AMBIGUOUS_LIST + b"\n\n"})


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(sse_upstream) as base:
        upstream = {"url": base + "/mcp"}
        route = {"name": "ro", "path": "/ro/mcp", "upstream": upstream, "expose": {"methods": ["read"]}}
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("untrusted"))) as running:
            yield running


def test_an_sse_answer_that_cannot_be_parsed_is_not_relayed(proxy: Proxy) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = httpx.post(proxy.url("/ro/mcp"), json=body, headers=MCP_HEADERS, timeout=10)
    assert b"delete_contact" not in response.content
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    answers = [line for line in data if line]
    assert len(answers) == 1
    assert '"code":-32603' in answers[0]
    assert "id: e1" in response.text  # the event keeps its id, for resumption


async def json_upstream_with_an_object_id(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every POST with a JSON-RPC response whose id is an object."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"jsonrpc":"2.0","id":{"not":"an id"},"result":{"tools":[]}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_an_answer_with_an_unusable_id_leaves_the_request_unanswered_not_crashed(tmp_path: Path) -> None:
    with serve_asgi(json_upstream_with_an_object_id) as base:
        route = {"name": "odd", "path": "/odd/mcp", "upstream": {"url": base + "/mcp"}}
        with run_proxy({"routes": [route]}, tmp_path) as proxy:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            response = httpx.post(proxy.url("/odd/mcp"), json=body, headers=MCP_HEADERS, timeout=10)
    answers = response.json()
    mine = next(a for a in answers if a.get("id") == 1)
    assert mine["error"]["code"] == -32603

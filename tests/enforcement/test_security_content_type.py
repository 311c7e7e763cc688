"""An answer in a body mcpfence does not check (neither JSON nor SSE) is never relayed.

Clients are lenient about media types: the official SDK reads any type starting
with ``application/json`` as JSON. An upstream answering ``tools/list`` as
``application/json-rpc`` must not have its unfiltered tool list reach them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.protocol.clients import MCP_HEADERS
from tests.servers import Proxy, run_proxy, serve_asgi

LISTING = (
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"list_contacts","inputSchema":{}},'
    b'{"name":"delete_contact","inputSchema":{}}]}}'
)


async def json_rpc_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every POST with the tool list, labelled ``application/json-rpc``."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json-rpc")],
        }
    )
    await send({"type": "http.response.body", "body": LISTING})


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(json_rpc_upstream) as base:
        route = {
            "name": "ro",
            "path": "/ro/mcp",
            "upstream": {"url": base + "/mcp"},
            "expose": {"methods": ["read"]},
        }
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("content-type"))) as running:
            yield running


def test_an_answer_of_another_media_type_becomes_an_internal_error(proxy: Proxy) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = httpx.post(proxy.url("/ro/mcp"), json=body, headers=MCP_HEADERS, timeout=10)
    assert "delete_contact" not in response.text
    answer = response.json()
    assert answer["id"] == 1
    assert answer["error"]["code"] == -32603
    assert "application/json-rpc" in answer["error"]["message"]

"""Bad input from either side is answered, never a crash (HTTP 500).

An infinity (``1e999``) is not a JSON number any peer can write back: in a
request it is a parse error (-32700), in an upstream answer the request gets
-32603. Host and Origin headers that do not parse are refused like foreign ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients import MCP_HEADERS
from tests.e2e.enforcement.hostile import canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi

INFINITE_RESULT = b'{"jsonrpc":"2.0","id":1,"result":{"tools":[],"nextCursor":1e999}}'
INFINITE_CALL = (
    b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
    b'"params":{"name":"list_contacts","arguments":{"limit":1e999}}}'
)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    bodies = {"/json/mcp": INFINITE_RESULT}
    with serve_asgi(canned_upstream(b"application/json", bodies)) as base:
        route = read_only_route("json", base + "/json/mcp")
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("bad-input"))) as running:
            yield running


def test_an_infinity_in_a_request_is_a_parse_error(proxy: Proxy) -> None:
    response = httpx.post(proxy.url("/json/mcp"), content=INFINITE_CALL, headers=MCP_HEADERS, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_an_infinity_in_an_upstream_answer_is_an_internal_error(proxy: Proxy) -> None:
    response = list_tools(proxy, "/json/mcp")
    assert response.status_code == 502  # a bad gateway, not a crash
    assert response.json()["error"]["code"] == -32603
    assert response.json()["id"] == 1


@pytest.mark.parametrize("host", ["[::1", "[::1]:x", "[zz]"])
def test_a_host_header_that_does_not_parse_is_refused(proxy: Proxy, host: str) -> None:
    response = list_tools_with(proxy, {"host": host})
    assert response.status_code == 421


@pytest.mark.parametrize("origin", ["http://[::1", "http://[::1]:x", "http://[zz]"])
def test_an_origin_header_that_does_not_parse_is_refused(proxy: Proxy, origin: str) -> None:
    response = list_tools_with(proxy, {"origin": origin})
    assert response.status_code == 403


def list_tools_with(proxy: Proxy, headers: dict[str, str]) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    return httpx.post(proxy.url("/json/mcp"), json=body, headers={**MCP_HEADERS, **headers}, timeout=10)

"""mcpfence keeps no cookies: what an upstream sets for one client never reaches it from another.

The upstream client is pooled across every client of a route; a cookie jar in it
would send the cookie one client's exchange earned (a login, a sticky session)
with every other client's requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients import MCP_HEADERS
from tests.servers import Proxy, run_proxy, serve_asgi


class CookieSetter:
    """Sets a session cookie on every answer; records the Cookie header of every request."""

    def __init__(self) -> None:
        self.cookies: list[str | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        headers = dict(scope["headers"])
        self.cookies.append(headers[b"cookie"].decode() if b"cookie" in headers else None)
        out = [(b"content-type", b"application/json"), (b"set-cookie", b"sid=client-a-secret; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b'{"jsonrpc":"2.0","id":1,"result":{}}'})


@pytest.fixture(scope="module")
def upstream() -> CookieSetter:
    return CookieSetter()


@pytest.fixture(scope="module")
def proxy(upstream: CookieSetter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(upstream) as base:
        # By host name: cookie jars refuse cookies from bare IP addresses.
        url = base.replace("127.0.0.1", "localhost") + "/mcp"
        route = {"name": "jar", "path": "/jar/mcp", "upstream": {"url": url}}
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("cookies"))) as running:
            yield running


def test_a_cookie_the_upstream_set_is_not_sent_with_later_requests(
    upstream: CookieSetter, proxy: Proxy
) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for _ in range(2):  # two clients, one after the other
        httpx.post(proxy.url("/jar/mcp"), json=ping, headers=MCP_HEADERS, timeout=10)
    assert upstream.cookies == [None, None]

"""An answer in a body mcpfence does not check (neither JSON nor SSE) is never relayed.

Clients are lenient about media types: the official SDK reads any type starting
with ``application/json`` as JSON. An upstream answering ``tools/list`` as
``application/json-rpc`` must not have its unfiltered tool list reach them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.enforcement.hostile import LISTING, canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """A read-only route whose upstream answers tools/list as ``application/json-rpc``."""
    with serve_asgi(canned_upstream(b"application/json-rpc", {"/mcp": LISTING})) as base:
        route = read_only_route("ro", base + "/mcp")
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("content-type"))) as running:
            yield running


def test_an_answer_of_another_media_type_becomes_an_internal_error(proxy: Proxy) -> None:
    response = list_tools(proxy, "/ro/mcp")
    assert "delete_contact" not in response.text
    answer = response.json()
    assert answer["id"] == 1
    assert answer["error"]["code"] == -32603
    assert "application/json-rpc" in answer["error"]["message"]

"""An upstream mcpfence cannot read is never relayed unchecked (fail closed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.enforcement.hostile import canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi

# A tools/list answer with a duplicate key: strict parsers refuse it, lenient ones
# keep the last "tools", which lists a write tool a read-only route must hide.
AMBIGUOUS_LIST = (
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"list_contacts","inputSchema":{}}],'
    b'"tools":[{"name":"delete_contact","inputSchema":{}}]}}'
)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    event = b"id: e1\ndata: " + AMBIGUOUS_LIST + b"\n\n"
    with serve_asgi(canned_upstream(b"text/event-stream", {"/mcp": event})) as base:
        route = read_only_route("ro", base + "/mcp")
        with run_proxy({"routes": [route]}, Path(tmp_path_factory.mktemp("untrusted"))) as running:
            yield running


def test_an_sse_answer_that_cannot_be_parsed_is_not_relayed(proxy: Proxy) -> None:
    response = list_tools(proxy, "/ro/mcp")
    assert b"delete_contact" not in response.content
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    answers = [line for line in data if line]
    assert len(answers) == 1
    assert '"code":-32603' in answers[0]
    assert "id: e1" in response.text  # the event keeps its id, for resumption


def test_an_answer_with_an_unusable_id_leaves_the_request_unanswered_not_crashed(tmp_path: Path) -> None:
    odd = b'{"jsonrpc":"2.0","id":{"not":"an id"},"result":{"tools":[]}}'
    with serve_asgi(canned_upstream(b"application/json", {"/mcp": odd})) as base:
        route = {"name": "odd", "path": "/odd/mcp", "upstream": {"url": base + "/mcp"}}
        with run_proxy({"routes": [route]}, tmp_path) as proxy:
            response = list_tools(proxy, "/odd/mcp")
    answers = response.json()
    mine = next(a for a in answers if a.get("id") == 1)
    assert mine["error"]["code"] == -32603

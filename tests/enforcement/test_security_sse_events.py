"""mcpfence reads an upstream's SSE stream as clients do, so what a client reads was checked.

The SSE rules a client follows: the last ``event:`` line of an event names it (an
empty name is ``message``), and a byte-order mark opening the stream is not part of its first line. Reading
either differently would relay, unchecked, a tool list the route must filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpfence.transport.sse import Parser
from tests.enforcement.hostile import LISTING, canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi

STREAMS = {
    "/renamed/mcp": b"event: note\nevent: message\ndata: " + LISTING + b"\n\n",
    "/unnamed/mcp": b"event: note\nevent:\ndata: " + LISTING + b"\n\n",
    "/bom/mcp": b"\xef\xbb\xbfdata: " + LISTING + b"\n\n",
}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(canned_upstream(b"text/event-stream", STREAMS)) as base:
        routes = [read_only_route(name, f"{base}/{name}/mcp") for name in ("renamed", "unnamed", "bom")]
        with run_proxy({"routes": routes}, Path(tmp_path_factory.mktemp("sse-events"))) as running:
            yield running


def _listed(proxy: Proxy, path: str) -> str:
    return list_tools(proxy, path).text


def test_an_event_is_named_by_its_last_event_line(proxy: Proxy) -> None:
    listed = _listed(proxy, "/renamed/mcp")
    assert "list_contacts" in listed
    assert "delete_contact" not in listed


def test_an_event_named_by_an_empty_line_is_a_message(proxy: Proxy) -> None:
    listed = _listed(proxy, "/unnamed/mcp")
    assert "list_contacts" in listed
    assert "delete_contact" not in listed


def test_a_byte_order_mark_opening_the_stream_is_skipped(proxy: Proxy) -> None:
    listed = _listed(proxy, "/bom/mcp")
    assert "list_contacts" in listed
    assert "delete_contact" not in listed


def test_a_byte_order_mark_split_across_chunks_is_skipped() -> None:
    parser = Parser()
    events = [*parser.feed(b"\xef"), *parser.feed(b"\xbb\xbfdata: x\n\n")]
    assert [event.data for event in events] == ["x"]

"""mcpfence reads an upstream's SSE stream as clients do, so what a client reads was checked.

The SSE rules a client follows: the last ``event:`` line of an event names it (an
empty name is ``message``), a byte-order mark opening the stream is not part of
its first line, and a bare CR ends a line even as the stream's last byte. Reading
any of these differently would relay, unchecked, a tool list the route must filter.
Events named otherwise carry no MCP message, and lenient clients may still read
their data: it is dropped, never relayed unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpfence.transport.sse import Parser
from tests.e2e.enforcement.hostile import LISTING, canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi

STREAMS = {
    "/renamed/mcp": b"event: note\nevent: message\ndata: " + LISTING + b"\n\n",
    "/unnamed/mcp": b"event: note\nevent:\ndata: " + LISTING + b"\n\n",
    "/bom/mcp": b"\xef\xbb\xbfdata: " + LISTING + b"\n\n",
    "/crcr/mcp": b"data: " + LISTING + b"\r\r",
    "/note/mcp": b"id: n1\nevent: note\ndata: " + LISTING + b"\n\n",
}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with serve_asgi(canned_upstream(b"text/event-stream", STREAMS)) as base:
        routes = [read_only_route(path.split("/")[1], base + path) for path in STREAMS]
        with run_proxy({"routes": routes}, Path(tmp_path_factory.mktemp("sse-events"))) as running:
            yield running


def _listed(proxy: Proxy, path: str) -> str:
    return list_tools(proxy, path).text


# Each stream carries the tool list as clients read it: it reaches them filtered.
READ_AS_CLIENTS_DO = {
    "an event is named by its last event line": "/renamed/mcp",
    "an event named by an empty line is a message": "/unnamed/mcp",
    "a byte-order mark opening the stream is skipped": "/bom/mcp",
    "an event ended by CR CR at the end of the stream is read": "/crcr/mcp",
}


@pytest.mark.parametrize("path", READ_AS_CLIENTS_DO.values(), ids=READ_AS_CLIENTS_DO.keys())
def test_a_tool_list_read_as_clients_read_it_is_filtered(proxy: Proxy, path: str) -> None:
    listed = _listed(proxy, path)
    assert "list_contacts" in listed
    assert "delete_contact" not in listed


def test_an_event_named_other_than_message_is_relayed_without_its_data(proxy: Proxy) -> None:
    listed = _listed(proxy, "/note/mcp")
    assert "delete_contact" not in listed
    assert "id: n1" in listed  # the event stays, for resumption; only its unchecked data goes
    assert '"code":-32603' in listed  # and the request gets an answer a client reads


def test_a_byte_order_mark_split_across_chunks_is_skipped() -> None:
    parser = Parser()
    events = [*parser.feed(b"\xef"), *parser.feed(b"\xbb\xbfdata: x\n\n")]
    assert [event.data for event in events] == ["x"]


def test_a_cr_held_back_at_the_end_of_the_stream_ends_the_last_event() -> None:
    parser = Parser()
    events = [*parser.feed(b"data: x\r\r"), *parser.finish()]
    assert [event.data for event in events] == ["x"]

"""How tests talk MCP: the official SDK client, and raw JSON-RPC for what it would never send."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import InitializeResult
from mcp_types.version import LATEST_HANDSHAKE_VERSION

MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
SESSION_ID = "mcp-session-id"
MODERN_VERSION = "2026-07-28"


@dataclass
class Connection:
    """An initialized SDK client session, plus every HTTP response its transport received."""

    session: ClientSession
    initialized: InitializeResult
    responses: list[httpx2.Response] = field(default_factory=list)

    @property
    def session_ids(self) -> set[str]:
        return {r.headers[SESSION_ID] for r in self.responses if SESSION_ID in r.headers}

    def answers_to(self, method: str) -> list[httpx2.Response]:
        """The HTTP responses to POSTed JSON-RPC messages of ``method``."""
        return [
            r
            for r in self.responses
            if r.request.method == "POST" and json.loads(r.request.content).get("method") == method
        ]


@asynccontextmanager
async def connect(
    url: str, headers: Mapping[str, str] | None = None, **session_options: Any
) -> AsyncIterator[Connection]:
    """Open the official SDK client on ``url`` and run the initialize handshake.

    ``session_options`` go to ``ClientSession`` (callbacks for server-to-client
    requests). On exit the SDK ends the session with DELETE, as real clients do.
    """
    responses: list[httpx2.Response] = []

    async def record(response: httpx2.Response) -> None:
        responses.append(response)

    http_client = httpx2.AsyncClient(
        headers=dict(headers or {}), timeout=10.0, event_hooks={"response": [record]}
    )
    async with (
        http_client,
        streamable_http_client(url, http_client=http_client) as (read, write),
        ClientSession(read, write, read_timeout_seconds=10.0, **session_options) as session,
    ):
        initialized = await session.initialize()
        yield Connection(session, initialized, responses)


# Raw JSON-RPC: building requests.


def request(method: str, params: Mapping[str, Any] | None = None, id: int = 1) -> dict[str, Any]:
    """A JSON-RPC request object."""
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": dict(params or {})}


def initialize_request(id: int = 1) -> dict[str, Any]:
    """The opening request of the initialize handshake, as raw JSON-RPC."""
    return request(
        "initialize",
        {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "raw-test-client", "version": "0"},
        },
        id,
    )


def modern_request(method: str, params: Mapping[str, Any] | None = None, id: int = 1) -> dict[str, Any]:
    """A 2026-07-28 (stateless protocol) request, its envelope in ``params._meta``."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return request(method, {**(params or {}), "_meta": meta}, id)


def modern_call(tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A 2026-07-28 (stateless protocol) tools/call."""
    return modern_request("tools/call", {"name": tool, "arguments": dict(arguments)})


def modern_headers(method: str, name: str) -> dict[str, str]:
    """The routing headers a 2026-07-28 request carries besides its body."""
    return {"mcp-protocol-version": MODERN_VERSION, "mcp-method": method, "mcp-name": name}


def session_headers(session_id: str) -> dict[str, str]:
    """What every request inside a session carries."""
    return {SESSION_ID: session_id, "mcp-protocol-version": LATEST_HANDSHAKE_VERSION}


async def send_initialize(http: httpx.AsyncClient, url: str) -> str:
    """Send the raw ``initialize`` request; returns the session id the server assigned."""
    opened = await http.post(url, json=initialize_request())
    assert opened.status_code == 200, opened.text
    return opened.headers[SESSION_ID]


async def send_initialized(http: httpx.AsyncClient, url: str, session_id: str) -> httpx.Response:
    """Send the ``notifications/initialized`` that completes the handshake."""
    notification = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    return await http.post(url, json=notification, headers=session_headers(session_id))


async def open_raw_session(http: httpx.AsyncClient, url: str) -> str:
    """Run the whole initialize handshake with raw requests; returns the session id."""
    session_id = await send_initialize(http, url)
    initialized = await send_initialized(http, url, session_id)
    assert initialized.status_code == 202, initialized.text
    return session_id


# Raw JSON-RPC: reading responses, including event streams.


def response_message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC response carried by ``response``, sent as JSON or as SSE events."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return _as_object(response.json(), response.text)
    for event in sse_events(response.text):
        if event.get("data"):
            message = _as_object(json.loads(event["data"]), event["data"])
            if "result" in message or "error" in message:
                return message
    raise AssertionError(f"no JSON-RPC response in the event stream: {response.text!r}")


def error_code(response: httpx.Response) -> int:
    """The JSON-RPC error code ``response`` carries (fails the test if it carries none)."""
    message = response_message(response)
    assert "error" in message, f"expected a JSON-RPC error, got {message!r}"
    code: int = message["error"]["code"]
    return code


def _as_object(message: Any, raw: str) -> dict[str, Any]:
    assert isinstance(message, dict), f"not a JSON-RPC object: {raw!r}"
    return message


SseEvent = dict[str, str]
# SSE's only line terminators; str.splitlines() would also split inside data on U+2028 etc.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _add_line(pending: SseEvent, line: str) -> SseEvent | None:
    """Add one line of an event stream to ``pending``; a blank line completes the event."""
    if not line:
        event = dict(pending)
        pending.clear()
        return event or None
    if line.startswith(":"):
        pending.setdefault("comment", line[1:].strip())
        return None
    name, _, value = line.partition(":")
    value = value.removeprefix(" ")
    pending[name] = pending[name] + "\n" + value if name == "data" and name in pending else value
    return None


def sse_events(text: str) -> Iterator[SseEvent]:
    """The events of a whole event stream, each as its fields (``data`` lines joined)."""
    pending: SseEvent = {}
    for line in [*_LINE_BREAK.split(text), ""]:
        if (event := _add_line(pending, line)) is not None:
            yield event


async def next_sse_events(response: httpx.Response, count: int) -> list[SseEvent]:
    """The next ``count`` events of a stream that may stay open after them."""
    pending: SseEvent = {}
    events: list[SseEvent] = []
    async for line in _sse_lines(response):
        if (event := _add_line(pending, line)) is not None:
            events.append(event)
            if len(events) == count:
                break
    return events


async def _sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    """Lines split only where SSE splits them (``httpx.aiter_lines`` also splits on U+2028)."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        # A trailing CR may be the first half of a CRLF that the next chunk completes.
        complete, carry = (buffer[:-1], "\r") if buffer.endswith("\r") else (buffer, "")
        *lines, rest = _LINE_BREAK.split(complete)
        buffer = rest + carry
        for line in lines:
            yield line

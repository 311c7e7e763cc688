"""The MCP server the protocol tests talk to, directly or through mcpfence.

Built with the official SDK's ``MCPServer`` so that "direct" is the reference
behaviour. An ASGI middleware records every HTTP request the server receives,
which is how tests prove what mcpfence did and did not forward.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types import JSONRPCMessage
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.e2e.conformance.reference_shapes import ReferenceShapes
from tests.servers import serve_asgi

# What resumable upstreams tell clients to wait before reconnecting (the SSE ``retry:`` field).
RETRY_MILLISECONDS = 1500
# How long ``slow_progress`` waits for the client to confirm it saw the first
# progress notification; only reached when a proxy buffers the stream.
CLIENT_CONFIRMATION_TIMEOUT = 5.0
# Tools whose stateless calls a ``lines`` upstream answers as JSON lines.
LINE_STREAMED_TOOLS = ("slow_progress", "confirm")


@dataclass
class ReceivedRequest:
    """One HTTP request as the upstream saw it (header names lowercased)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    hung_up: bool = False  # the sender disconnected before the response was complete

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, or None when it was not sent."""
        return next((value for key, value in self.headers if key == name.lower()), None)


@dataclass
class Upstream:
    """A running test server: where it listens and what it has received."""

    base_url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    tool_headers: list[Mapping[str, str]] = field(default_factory=list)
    client_saw_progress: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return self.base_url + "/mcp"

    def reset(self) -> None:
        """Forget earlier traffic, so a shared server serves independent tests."""
        self.requests.clear()
        self.tool_headers.clear()
        self.client_saw_progress.clear()


class RecordingMiddleware:
    """Records every HTTP request before serving it, and whether its sender hung up early."""

    def __init__(self, app: ASGIApp, log: list[ReceivedRequest]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        received = ReceivedRequest(scope["method"], scope["path"], headers)
        self.log.append(received)
        finished = False

        async def sending(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not finished:
                received.hung_up = True
            return message

        await self.app(scope, receiving, sending)


class MemoryEventStore(EventStore):
    """Keeps every SSE event so a client can resume a stream with ``Last-Event-ID``."""

    def __init__(self) -> None:
        self.events: list[tuple[EventId, StreamId, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = f"ev-{len(self.events) + 1}"
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        ids = [event_id for event_id, _, _ in self.events]
        if last_event_id not in ids:
            return None
        position = ids.index(last_event_id)
        stream_id = self.events[position][1]
        for event_id, stream, message in self.events[position + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


class Person(BaseModel):
    """What the ``ask`` tool elicits from the client."""

    name: str


def build_server(upstream: Upstream) -> MCPServer:
    """The tools every protocol test relies on."""
    server = MCPServer("protocol-upstream", version="1.2.3")

    @server.tool()
    def echo(message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return the arguments unchanged."""
        return {"message": message, "extra": extra}

    @server.tool()
    async def slow_progress(steps: int, delay: float, ctx: Context) -> str:
        """Report progress ``steps`` times, holding the result until the client saw the first.

        Waiting for the client's confirmation (not a fixed sleep) is what makes
        "progress arrives before the result" provable without timing anything.
        """
        await ctx.report_progress(1, steps)
        confirmed = await anyio.to_thread.run_sync(
            upstream.client_saw_progress.wait, CLIENT_CONFIRMATION_TIMEOUT
        )
        for step in range(2, steps + 1):
            await anyio.sleep(delay)
            await ctx.report_progress(step, steps)
        return f"done after {steps} steps; client saw progress first: {confirmed}"

    @server.tool()
    def fail(reason: str) -> str:
        """Always raise, so the SDK answers with an ``isError`` result."""
        raise RuntimeError(reason)

    @server.tool()
    async def ask(ctx: Context) -> str:
        """Ask the client a question mid-call: a server-to-client request on the call's stream."""
        answer = await ctx.elicit("Who are you?", Person)
        return f"hello {answer.data.name}" if answer.action == "accept" else answer.action

    @server.tool()
    async def confirm(ctx: Context) -> InputRequiredResult | str:
        """Stateless elicitation: report progress, then ask for a name inside the result."""
        await ctx.report_progress(1, 2)
        answer = (ctx.input_responses or {}).get("who")
        if isinstance(answer, ElicitResult) and answer.action == "accept" and answer.content:
            return f"confirmed by {answer.content.get('name')}"
        schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        params = ElicitRequestFormParams(message="Who confirms?", requested_schema=schema)
        question = ElicitRequest(params=params)
        return InputRequiredResult(input_requests={"who": question})

    @server.tool()
    async def change_tools(ctx: Context) -> str:
        """Tell ``subscriptions/listen`` streams that the tool list changed."""
        await ctx.notify_tools_changed()
        return "changed"

    @server.tool()
    def whoami(ctx: Context) -> str:
        """Record the headers this call arrived with; reveal nothing."""
        upstream.tool_headers.append(dict(ctx.headers or {}))
        return "you are a client"

    return server


def build_app(
    upstream: Upstream, *, json_response: bool, stateless: bool, resumable: bool, lines: bool
) -> ASGIApp:
    server = build_server(upstream)
    app: ASGIApp = server.streamable_http_app(
        json_response=json_response,
        stateless_http=stateless,
        event_store=MemoryEventStore() if resumable else None,
        retry_interval=RETRY_MILLISECONDS if resumable else None,
    )
    if lines:
        app = ReferenceShapes(app, LINE_STREAMED_TOOLS)
    return RecordingMiddleware(app, upstream.requests)


@contextmanager
def run_upstream(
    *,
    json_response: bool = False,
    stateless: bool = False,
    resumable: bool = False,
    lines: bool = False,
    port: int | None = None,
) -> Iterator[Upstream]:
    """Serve a fresh upstream on 127.0.0.1 (on ``port`` if given) for the block's duration.

    ``resumable`` keeps SSE events for ``Last-Event-ID`` and opens each stream
    with a priming event (an id, ``retry:``, empty data). ``lines`` answers as the
    conformance suite's reference server does: stateless ``subscriptions/listen`` and
    streaming calls as JSON lines, header values trimmed.
    """
    upstream = Upstream()
    app = build_app(
        upstream, json_response=json_response, stateless=stateless, resumable=resumable, lines=lines
    )
    with serve_asgi(app, port=port) as base_url:
        upstream.base_url = base_url
        yield upstream

"""Downstream sessions that mcpfence itself hosts, for upstreams reached through a hub.

Where the upstream speaks Streamable HTTP, mcpfence relays the upstream's own
sessions. For stdio and legacy SSE upstreams (and for legacy SSE clients) there
is no upstream session to relay, so mcpfence issues the session id, keeps the
session's in-flight requests, and runs every message through the route's
pipeline: one :class:`Flow` per client request (a ``FlowTracker`` per session, as
the relay's), ``server_message`` for the rest. Where a message goes next is the
downstream transport's business (an :class:`Outbox`); see
docs/explanation/architecture.md for the path of one request.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Final, Protocol

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError, Message, RequestId
from mcpfence.pipeline import Context, Pipeline, refusal
from mcpfence.transport.downstream.flows import FlowTracker
from mcpfence.transport.http import RETRY_AFTER
from mcpfence.transport.upstream.hub import Hub
from mcpfence.transport.upstream.link import LinkFactory

log = logging.getLogger("mcpfence")

REAP_EVERY_SECONDS: Final = 60.0


class Outbox(Protocol):
    """Where a session's messages to the client go."""

    async def put(self, message: Message, request_id: RequestId | None) -> None:
        """Deliver ``message``; ``request_id`` is the client request it answers or belongs to."""
        ...

    def busy(self) -> bool:
        """Whether a stream to the client is open (so the session is not idle)."""
        ...

    def close(self) -> None:
        """The session has ended: end its streams."""
        ...


class Session:
    """One client session: its flows in flight and its place on a hub."""

    def __init__(
        self, session_id: str, context: Context, pipeline: Pipeline, hub: Hub, outbox: Outbox
    ) -> None:
        self.id = session_id
        self.context = context
        self.hub = hub
        self.outbox = outbox
        # The session's requests in flight, by the client's own ids (the hub rewrites them).
        self.flows = FlowTracker(pipeline)
        self.touched = time.monotonic()
        hub.join(self)

    async def submit(self, messages: list[Message], headers: Mapping[str, str], client_id: str) -> None:
        """Check and forward what a client sent; requests answered here go straight back.

        Raises JsonRpcError, before anything is forwarded, for a request whose id is in flight.
        """
        self.touched = time.monotonic()
        for message in messages:
            if jsonrpc.is_request(message) and message["id"] in self.flows.pending:
                # Its answer would be matched to the other request, and get that one's checks.
                reason = f"Invalid Request: id {message['id']!r} is already in flight in this session"
                raise JsonRpcError(jsonrpc.INVALID_REQUEST, reason)
        version = headers.get("mcp-protocol-version") or self.context.protocol_version
        context = replace(self.context, headers=headers, protocol_version=version, client_id=client_id)
        await self.flows.pipeline.prepare(context, messages)
        for message in messages:
            if not jsonrpc.is_request(message):
                await self.hub.send(self, message)
                continue
            flow = self.flows.start(context, message)
            if flow.response is not None:
                await self.outbox.put(flow.response, message["id"])
            else:
                self.flows.track(message["id"], flow)
                await self.hub.send(self, flow.request)

    async def receive(self, message: Message) -> None:
        """A message from upstream: an answer to one of this session's requests, or the server's own."""
        if jsonrpc.is_response(message):
            request_id = message["id"]
            waiting = self.flows.pending.get(request_id)
            if waiting is not None and waiting.method == "initialize":
                self._negotiated(message)
            answer = self.flows.answer(request_id, message)
            if answer is not None:
                await self._deliver(answer, request_id)
                return
        checked = self.flows.pipeline.server_message(self.context, message)
        if checked is not None:
            await self.outbox.put(checked, self._related(message))
        elif jsonrpc.is_request(message):  # the server waits for an answer: refuse it
            await self.hub.send(self, refusal(message))

    async def fail(self, request_id: RequestId, reason: str) -> None:
        """The upstream will never answer this request: the client gets -32603."""
        answer = self.flows.fail(request_id, reason)
        if answer is not None:
            await self._deliver(answer, request_id)

    async def _deliver(self, answer: Message, request_id: RequestId) -> None:
        await self.flows.settle()
        await self.outbox.put(answer, request_id)

    def _negotiated(self, answer: Message) -> None:
        result = answer.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if isinstance(version, str):
            self.context.protocol_version = version

    def _related(self, message: Message) -> RequestId | None:
        """The client request a progress notification reports on, if it is one."""
        if message.get("method") != "notifications/progress":
            return None
        token = message.get("params", {}).get("progressToken")
        for request_id, flow in self.flows.pending.items():
            meta = flow.params.get("_meta")
            if isinstance(meta, dict) and meta.get("progressToken") == token:
                return request_id
        return None


@dataclass(eq=False)
class SessionTable:
    """The live sessions of one route, by id; idle ones are ended after a while.

    Each session gets its own link, or all share one (``shared``: ``upstream.shared``).
    Stateless (2026-07-28) requests have no session: each POST is a short-lived
    session of its own on the shared link, which rewrites ids so that clients
    numbering their requests alike never collide.
    """

    route: str
    pipeline: Pipeline
    link: LinkFactory
    timeout_seconds: float
    _: KW_ONLY
    shared: bool
    # Each session may start a child (stdio) or hold an upstream stream: bounded.
    max_sessions: int = 100
    idle_seconds: float = 1800.0
    sessions: dict[str, Session] = field(default_factory=dict, init=False)
    # Cluster mode: session ids start with the owning replica's id (mcpfence.cluster.forward).
    id_prefix: str = field(default="", init=False)
    _common: Hub | None = field(default=None, init=False, repr=False)
    _reaper: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def open(self, outbox: Outbox, protocol_version: str = "") -> Session:
        """A new session with a fresh id, kept until it ends or idles out; 503 past the cap."""
        if len(self.sessions) >= self.max_sessions:
            reason = f"route {self.route} already has {self.max_sessions} sessions open; try again later"
            raise JsonRpcError(jsonrpc.INTERNAL_ERROR, reason, status=503, headers=[RETRY_AFTER])
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap())
        session_id = self.id_prefix + secrets.token_hex(16)
        hub = self.common() if self.shared else Hub(self.link, self.timeout_seconds, shared=False)
        session = self._session(session_id, hub, outbox, protocol_version)
        self.sessions[session_id] = session
        return session

    def stateless(self, outbox: Outbox, protocol_version: str) -> Session:
        """A session for one stateless exchange; the caller releases it with ``leave``."""
        return self._session("", self.common(), outbox, protocol_version)

    def common(self) -> Hub:
        """The link every shared and stateless session uses."""
        if self._common is None:
            self._common = Hub(self.link, self.timeout_seconds, shared=True)
        return self._common

    def _session(self, session_id: str, hub: Hub, outbox: Outbox, protocol_version: str) -> Session:
        context = Context(route=self.route, session_id=session_id, protocol_version=protocol_version)
        return Session(session_id, context, self.pipeline, hub, outbox)

    def get(self, session_id: str) -> Session | None:
        """The live session by id; looking it up counts as use, so it does not idle out."""
        session = self.sessions.get(session_id)
        if session is not None:
            session.touched = time.monotonic()
        return session

    async def end(self, session_id: str) -> None:
        """End a session's streams and leave its hub (a session already gone is no error)."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        session.outbox.close()
        await session.hub.leave(session)

    async def close(self) -> None:
        """End every session (mcpfence is stopping): children are stopped too."""
        if self._reaper is not None:
            self._reaper.cancel()
        for session_id in list(self.sessions):
            await self.end(session_id)
        if self._common is not None:
            await self._common.close()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(REAP_EVERY_SECONDS, self.idle_seconds))
            cutoff = time.monotonic() - self.idle_seconds
            for session in list(self.sessions.values()):
                if session.touched < cutoff and not session.flows.pending and not session.outbox.busy():
                    try:
                        await self.end(session.id)
                    except Exception:
                        log.exception("route %s: ending idle session %s failed", self.route, session.id)

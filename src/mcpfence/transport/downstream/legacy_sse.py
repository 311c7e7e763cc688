"""The legacy HTTP+SSE transport (MCP 2024-11-05) for older clients, whatever the upstream.

``GET {path}/sse`` opens the session's stream; its first event, ``endpoint``,
names ``{path}/messages?session_id=...``, where the client POSTs each message
(answered 202). Every answer and server message then arrives on the stream.
The session, and a per-session upstream with it, ends when the stream closes.
"""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError
from mcpfence.protocol import LEGACY_SSE_VERSION as LEGACY_VERSION
from mcpfence.transport import http, sse
from mcpfence.transport.downstream.opening import Opening
from mcpfence.transport.downstream.outbox import LegacyOutbox
from mcpfence.transport.downstream.sessions import Session, SessionTable


class LegacySseRoute:
    """``{path}/sse`` and ``{path}/messages`` of one route."""

    def __init__(self, path: str, table: SessionTable, opening: Opening) -> None:
        self.path = path.rstrip("/")
        self.table = table
        self.opening = opening

    async def handle(self, request: http.Request, send: http.Send) -> None:
        leaf = request.path.rstrip("/").rpartition("/")[2]
        try:
            client_id = self.opening.client(request)
            if leaf == "sse" and request.method == "GET":
                await self.stream(request, send)
            elif leaf == "messages" and request.method == "POST":
                await self.message(request, send, client_id)
            else:
                await http.send_method_not_allowed(send, b"GET" if leaf == "sse" else b"POST")
        except JsonRpcError as error:
            await http.send_jsonrpc_error(send, error)

    async def stream(self, request: http.Request, send: http.Send) -> None:
        outbox = LegacyOutbox()
        session = self.table.open(outbox, LEGACY_VERSION)
        endpoint = f"{self.path}/messages?session_id={session.id}"
        try:
            await outbox.stream.serve(request, send, sse.Event([("event", "endpoint"), ("data", endpoint)]))
        finally:
            await self.table.end(session.id)
        with contextlib.suppress(OSError):
            await http.end_stream(send)

    async def message(self, request: http.Request, send: http.Send, client_id: str) -> None:
        session = self._session(request)
        version = session.context.protocol_version
        incoming = await self.opening.admit(
            request, client_id, session.id, verified=True, protocol_version=version
        )
        await session.submit(incoming.messages, request.headers, client_id)
        await http.send_response(send, 202, b"Accepted", incoming.headers)

    def _session(self, request: http.Request) -> Session:
        query = parse_qs(request.query.decode("latin-1"))
        session_id = (query.get("session_id") or query.get("sessionId") or [""])[0]
        session = self.table.get(session_id)
        if session is None or not isinstance(session.outbox, LegacyOutbox):
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, "Session not found", status=404)
        return session

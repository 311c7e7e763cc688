"""Streamable HTTP served by mcpfence itself, for stdio and legacy SSE upstreams.

mcpfence issues the ``Mcp-Session-Id`` on ``initialize``. A POST carrying
requests is answered with one JSON body when nothing but the answers arrives,
and switches to an SSE stream as soon as the server sends anything else
(progress, sampling, elicitation, logging), so those reach the client while the
call is in flight. GET opens the stream for server messages no POST carries;
DELETE ends the session and, unless it is shared, the upstream child with it.
"""

from __future__ import annotations

from typing import Final

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError, Message
from mcpfence.protocol import STATELESS_VERSIONS
from mcpfence.transport.downstream.messages import meta_version
from mcpfence.transport.downstream.opening import Incoming, Opening
from mcpfence.transport.downstream.outbox import HostedOutbox, PostStream
from mcpfence.transport.downstream.sessions import Session, SessionTable
from mcpfence.transport.http import (
    JSON_HEADERS,
    SSE_HEADERS,
    RawHeaders,
    Request,
    Send,
    end_stream,
    send_jsonrpc_error,
    send_method_not_allowed,
    send_response,
    start_stream,
    until_disconnect,
)
from mcpfence.transport.sse import send_message

SESSION_REQUIRED: Final = "Bad Request: Mcp-Session-Id header is required"


def _stateless_version(request: Request, messages: list[Message]) -> str | None:
    """The 2026-07-28-style revision a sessionless POST declares, if it declares one."""
    version = request.headers.get("mcp-protocol-version") or meta_version(messages)
    return version if version in STATELESS_VERSIONS else None


class HostedRoute:
    """Downstream Streamable HTTP for one route whose upstream is reached through hubs."""

    def __init__(self, table: SessionTable, opening: Opening) -> None:
        self.table = table
        self.opening = opening

    async def handle(self, request: Request, send: Send) -> None:
        try:
            client_id = self.opening.client(request)
            if request.method == "POST":
                await self.post(request, send, client_id)
            elif request.method == "GET":
                await self.listen(self._existing(request), request, send)
            elif request.method == "DELETE":
                await self.table.end(self._existing(request).id)
                await send_response(send, 200)
            else:
                await send_method_not_allowed(send, b"GET, POST, DELETE")
        except JsonRpcError as error:
            await send_jsonrpc_error(send, error)

    def _existing(self, request: Request) -> Session:
        session_id = request.headers.get("mcp-session-id")
        if session_id is None:
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, SESSION_REQUIRED)
        session = self.table.get(session_id)
        if session is None or not isinstance(session.outbox, HostedOutbox):
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, "Session not found", status=404)
        return session

    async def post(self, request: Request, send: Send, client_id: str) -> None:
        session_id = request.headers.get("mcp-session-id")
        known = session_id is not None and self.table.get(session_id) is not None
        incoming = await self.opening.admit(request, client_id, session_id or "", verified=known)
        messages = incoming.messages
        version = _stateless_version(request, messages)
        if session_id is not None:
            await self._exchange(send, self._existing(request), incoming)
        elif len(messages) == 1 and messages[0].get("method") == "initialize" and "id" in messages[0]:
            session = self.table.open(HostedOutbox())
            incoming.headers.append((b"mcp-session-id", session.id.encode()))
            await self._exchange(send, session, incoming)
        elif version is not None:
            session = self.table.stateless(HostedOutbox(), version)
            try:
                await self._exchange(send, session, incoming)
            finally:
                await session.hub.leave(session)
        else:
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, SESSION_REQUIRED)

    async def _exchange(self, send: Send, session: Session, incoming: Incoming) -> None:
        """Submit one POST's messages and answer it: 202, JSON, or a stream."""
        outbox = session.outbox
        assert isinstance(outbox, HostedOutbox)
        request = incoming.request
        request_ids = [m["id"] for m in incoming.messages if jsonrpc.is_request(m)]
        if not request_ids:
            await session.submit(incoming.messages, request.headers, incoming.client_id)
            await send_response(send, 202, b"", incoming.headers)
            return
        post = PostStream(request_ids)
        outbox.posts.append(post)
        try:
            await session.submit(incoming.messages, request.headers, incoming.client_id)
            await until_disconnect(request, self._answer(send, post, incoming.batch, incoming.headers))
        finally:
            outbox.posts.remove(post)

    async def _answer(self, send: Send, post: PostStream, batch: bool, headers: RawHeaders) -> None:
        """Hold answers for one JSON body; stream once anything else comes first."""
        held: list[Message] = []
        streaming = False

        async def emit(message: Message) -> None:
            nonlocal streaming
            if jsonrpc.is_response(message):
                post.waiting.discard(message.get("id"))
                if not streaming:
                    held.append(message)
                    return
            if not streaming:
                streaming = True
                await start_stream(send, 200, [*SSE_HEADERS, *headers])
                for answer in held:
                    await send_message(send, answer)
            await send_message(send, message)

        # The hub answers every forwarded request in the end, if need be with a timeout error.
        while post.waiting:
            await emit(await post.queue.get())
        if streaming:
            await end_stream(send)
            return
        body: Message | list[Message] = held if batch or len(held) > 1 else held[0]
        await send_response(send, 200, jsonrpc.dumps(body), [*JSON_HEADERS, *headers])

    async def listen(self, session: Session, request: Request, send: Send) -> None:
        """The GET stream: server messages that no POST stream is carrying."""
        outbox = session.outbox
        assert isinstance(outbox, HostedOutbox)
        await outbox.general.serve(request, send)
        await end_stream(send)

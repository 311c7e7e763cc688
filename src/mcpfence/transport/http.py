"""Minimal ASGI request and response helpers for the hot path.

A full framework's request object costs more per call than mcpfence needs: we
read the headers once into a dict, read the body with a size limit, and send
whole or streamed responses.
"""

from __future__ import annotations

import asyncio
import hmac
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from typing import Final

# The ASGI types are starlette's; the rest of mcpfence imports them from here.
from starlette.types import ASGIApp as ASGIApp
from starlette.types import Receive as Receive
from starlette.types import Scope as Scope
from starlette.types import Send as Send

from mcpfence import jsonrpc

RawHeaders = Sequence[tuple[bytes, bytes]]

# How long a client refused for want of capacity (sessions, streams) waits before trying again.
RETRY_AFTER: Final = (b"retry-after", b"10")
OWS: Final = b" \t"  # HTTP's optional whitespace: spaces and horizontal tabs

JSON_HEADERS: RawHeaders = [(b"content-type", b"application/json")]
SSE_HEADERS: RawHeaders = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


class SecretGate(ABC):
    """ASGI middleware that passes on only HTTP requests presenting ``secret``, compared in
    constant time. Subclasses say where the secret is presented and how a refusal reads
    (the admin API's bearer token, the cluster's replica-to-replica secret)."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self._secret = secret.encode()

    @abstractmethod
    def presented(self, scope: Scope) -> bytes | None:
        """The secret the request presents, if any."""

    @abstractmethod
    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request without the secret."""

    def admitted(self, scope: Scope) -> Scope:
        """The scope the app sees for an admitted request (unchanged unless overridden)."""
        return scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            presented = self.presented(scope)
            if presented is None or not hmac.compare_digest(presented, self._secret):
                await self.refuse(scope, receive, send)
                return
            scope = self.admitted(scope)
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """The request body exceeds ``server.max_body_bytes``."""


class Request:
    """One inbound HTTP request: method, path, lower-cased headers, body on demand."""

    __slots__ = ("_receive", "headers", "method", "path", "query", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        # A field value excludes the optional whitespace around it (RFC 9110 §5.5), so what
        # mcpfence compares and forwards is the value, never the padding a server may keep.
        self.headers: dict[str, str] = {
            name.decode("latin-1"): value.strip(OWS).decode("latin-1") for name, value in scope["headers"]
        }

    @property
    def peer(self) -> str:
        """The address the request came from (``""`` when the server does not say)."""
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    def header_count(self, name: str) -> int:
        """How often header ``name`` (lower case) was sent: ``headers`` keeps only the last."""
        raw = name.encode("latin-1")
        return sum(1 for key, _ in self.scope["headers"] if key.lower() == raw)

    async def body(self, limit: int) -> bytes:
        """The whole body, refusing more than ``limit`` bytes before reading it all."""
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise asyncio.CancelledError("client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def wait_disconnect(self) -> None:
        """Return once the client has gone away (the body has been read already)."""
        while (await self._receive())["type"] != "http.disconnect":
            pass


def media_type(content_type: str) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``: what kind of body it is."""
    return content_type.split(";")[0].strip().lower()


async def send_response(
    send: Send, status: int, body: bytes = b"", headers: RawHeaders = ()
) -> None:
    """Send a whole response with a correct content-length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def start_stream(send: Send, status: int, headers: RawHeaders) -> None:
    """Begin a response whose body follows in parts (an SSE stream, JSON lines)."""
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})


async def end_stream(send: Send) -> None:
    """End a response begun with :func:`start_stream`."""
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def send_method_not_allowed(send: Send, allow: bytes) -> None:
    """405, with the ``Allow`` header HTTP requires alongside it."""
    await send_response(send, 405, b"Method Not Allowed", [(b"allow", allow)])


async def send_jsonrpc_error(send: Send, error: jsonrpc.JsonRpcError) -> None:
    """Answer with a JSON-RPC error object at the error's HTTP status."""
    body = jsonrpc.dumps(error.to_message())
    await send_response(send, error.status, body, [*JSON_HEADERS, *error.headers])


async def until_disconnect(
    request: Request, work: Awaitable[None], closed: asyncio.Event | None = None
) -> None:
    """Run ``work`` (a relayed stream); cancel it, and so its upstream request, when the
    client goes away or ``closed`` is set (the route was withdrawn)."""
    task = asyncio.ensure_future(work)
    watchers = {asyncio.ensure_future(request.wait_disconnect())}
    if closed is not None:
        watchers.add(asyncio.ensure_future(_until_set(closed)))
    try:
        await asyncio.wait({task, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        else:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        for watcher in watchers:
            watcher.cancel()


async def _until_set(event: asyncio.Event) -> None:
    """``event.wait()`` without its result, so that every watcher is a ``Future[None]``."""
    await event.wait()

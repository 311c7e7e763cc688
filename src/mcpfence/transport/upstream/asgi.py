"""An MCP server that is an ASGI app in this process, reached by calling it (no socket).

mcpfence as middleware relays every MCP request exactly as ``mcpfence serve``
does; only the last step differs: instead of an HTTP request over a pooled
connection, the relay calls the wrapped app with a new ASGI scope and reads
what it sends back. The scope is the client's own (so the app sees the same
path, ``Host``, server and root path), with the headers the relay allows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextvars import ContextVar

from multidict import CIMultiDict, CIMultiDictProxy
from starlette.types import ASGIApp
from starlette.types import Message as ASGIMessage

from mcpfence.transport.http import Scope
from mcpfence.transport.upstream.client import UpstreamError, UpstreamResponse, read_body, timeout_error
from mcpfence.transport.upstream.limits import StreamCaps, StreamSlots

log = logging.getLogger("mcpfence")

# The scope of the client request being relayed: the template for the app's scope.
CLIENT_SCOPE: ContextVar[Scope] = ContextVar("mcpfence_client_scope")
# Sent by the relay, or by the client and kept for the app (it checks them itself).
_OWN_HEADERS = frozenset({b"host"})
# Chunks an app may send ahead of the relay before its ``send`` waits.
_BUFFERED_CHUNKS = 64
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class AsgiResponse:
    """What the app sent back: a head, then body chunks as the app sends them."""

    def __init__(self, deadline: float | None) -> None:
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.head = asyncio.get_running_loop().create_future()
        self.gone = asyncio.Event()  # the relay is done with the answer: a disconnect for the app
        self.task: asyncio.Task[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._arrived = asyncio.Event()  # a chunk, or the end, is there for the relay
        self._taken = asyncio.Event()  # the relay took chunks: the app may send more
        self._deadline = deadline
        self._ended = False
        self._failure: UpstreamError | None = None

    @property
    def content(self) -> AsgiResponse:
        return self

    @property
    def content_length(self) -> int | None:
        return None  # read_body then reads chunk by chunk, within its size bound

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_any()])

    async def iter_any(self) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._taken.set()
                yield chunk
            elif self._ended:
                if self._failure is not None:
                    raise self._failure
                return
            else:
                self._arrived.clear()
                async with asyncio.timeout_at(self._deadline):
                    await self._arrived.wait()

    def release(self) -> None:
        self.gone.set()
        self._taken.set()

    # -- the app's side ----------------------------------------------------------

    async def send(self, message: ASGIMessage) -> None:
        if self.gone.is_set():
            return
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"])
            self.headers = CIMultiDictProxy(headers)
            self.head.set_result(None)
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                self._chunks.append(body)
                self._arrived.set()
                while len(self._chunks) >= _BUFFERED_CHUNKS and not self.gone.is_set():
                    self._taken.clear()
                    await self._taken.wait()  # the relay reads, or leaves
            if not message.get("more_body", False):
                self._end()

    def _end(self) -> None:
        self._ended = True
        self._arrived.set()

    def finished(self, failure: UpstreamError | None) -> None:
        """The app returned (or raised): no more chunks will come."""
        if not self._ended:
            self._failure = failure
        if not self.head.done():
            self.head.set_exception(failure or UpstreamError("the app returned without answering"))
        self._end()


class AsgiUpstream:
    """An ASGI app standing in for an upstream URL: one call per relayed exchange."""

    def __init__(
        self, app: ASGIApp, label: str, timeout_seconds: float, streams: StreamCaps | None = None
    ) -> None:
        self.app = app
        self.url = self.shown_url = label  # how error messages name it
        self.headers: dict[str, str] = {}
        self.timeout_seconds = timeout_seconds
        # The app's own GET streams are bounded like a remote upstream's.
        self.streams = StreamSlots(streams or StreamCaps())

    async def open(
        self, method: str, headers: Mapping[str, str], body: bytes | None = None,
        deadline: float | None = None, url: str | None = None,
    ) -> UpstreamResponse:
        """Call the app and return once it has sent its response head."""
        client = CLIENT_SCOPE.get()
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.extend((k, v) for k, v in client["headers"] if k in _OWN_HEADERS)
        if body is not None:
            raw.append((b"content-length", str(len(body)).encode()))
        scope = {**client, "method": method, "headers": raw}
        response = AsgiResponse(deadline)
        response.task = asyncio.ensure_future(self._run(scope, body or b"", response))
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.shield(response.head)
        except TimeoutError:
            response.release()
            raise self.timeout_error() from None
        return response

    async def _run(self, scope: Scope, body: bytes, response: AsgiResponse) -> None:
        sent = False

        async def receive() -> ASGIMessage:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await response.gone.wait()
            return {"type": "http.disconnect"}

        failure = None
        try:
            await self.app(scope, receive, response.send)
        except Exception as exc:
            log.exception("%s failed while answering", self.url)
            failure = UpstreamError(f"{self.url} failed: {type(exc).__name__}")
        response.finished(failure)

    async def read(self, response: UpstreamResponse) -> bytes:
        return await read_body(self, response)

    def timeout_error(self) -> UpstreamError:
        return timeout_error(self)

    async def close(self) -> None:
        """Nothing to close: the app's own lifespan is the server's to run."""

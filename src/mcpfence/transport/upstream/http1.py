"""HTTP/1.1 to an upstream MCP server: pooled keep-alive connections parsed by httptools.

Every forwarded call crosses this client, so it is built for the hot path. aiohttp's
``ClientSession.request`` cost about 80 µs of CPU per call on the benchmark (URL objects,
cookie and tracing hooks, a timeout context per request); an asyncio protocol feeding
llhttp (through httptools, the parser uvicorn uses) costs about 15
(docs/explanation/performance.md). It does what an MCP upstream needs and no more:

- one origin per :class:`Pool`, ``http`` or ``https``; userinfo in the URL becomes
  Basic credentials, as other clients do;
- a request is one write (head and a body of known length);
- the answer's head (at most ``MAX_HEAD_BYTES``) is awaited, its body streamed with
  back-pressure: past ``HIGH_WATER`` unread bytes the socket is not read until the
  reader catches up;
- ``gzip`` and ``deflate`` bodies are decoded in bounded steps; any other coding fails;
- redirects are never followed, and there are no cookies and no proxies;
- a connection goes back to the pool only after a complete answer that allows it.

Failures raise the interface's :class:`~mcpfence.transport.upstream.client.HttpError`;
a passed deadline raises ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Final, cast
from urllib.parse import unquote, urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from mcpfence.transport.upstream.client import HttpError

# Unread body bytes buffered per connection before reading from the socket pauses.
HIGH_WATER: Final = 256 * 1024
# The most one decoding step may produce from a compressed chunk (a small chunk can
# inflate to gigabytes; the reader's own bound then applies between steps).
DECODE_STEP: Final = 1024 * 1024
# The most an upstream may send with nothing to show for it (no end of head, no body byte):
# an answer's status line and headers, or chunk framing and trailers. The parser would hold it.
MAX_HEAD_BYTES: Final = 64 * 1024
# An idle connection older than this is closed rather than reused (servers drop them).
IDLE_SECONDS: Final = 30.0
_DECODERS: Final = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_NO_BODY: Final = frozenset({204, 304})
_DEFAULTS: Final = {"accept": "*/*", "accept-encoding": "gzip, deflate"}


class Origin:
    """Where a pool connects, and the request line's fixed parts for one URL."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default = parts.port is None or parts.port == (443 if self.tls else 80)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = shown if default else f"{shown}:{self.port}"
        self.credentials: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.credentials = "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def target(url: str) -> str:
    """The request target of ``url``: its path and query."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _head(method: str, path: str, origin: Origin, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """The request head; header values with line breaks are refused, never sent.

    Like other clients it asks for ``gzip``/``deflate`` and accepts anything unless told
    otherwise, and sends the URL's credentials unless an ``Authorization`` is configured.
    """
    lines = [f"{method} {path} HTTP/1.1\r\nhost: {origin.authority}\r\n"]
    defaults = dict(_DEFAULTS)
    if origin.credentials is not None:
        defaults["authorization"] = origin.credentials
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise HttpError(f"header {name!r} has a line break or colon and is not sent")
        lower = name.lower()
        defaults.pop(lower, None)
        lines.append(f"{lower}: {value}\r\n")
    lines.extend(f"{name}: {value}\r\n" for name, value in defaults.items())
    if body is not None:
        lines.append(f"content-length: {len(body)}\r\n")
    lines.append("\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise HttpError("a header value is not Latin-1 text and is not sent") from None


class Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.head: asyncio.Future[Response] | None = None
        self.response: Response | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.released = False
        self._unshown = 0
        self._fields: list[tuple[str, str]] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it

    def data_received(self, data: bytes) -> None:
        if self.head is None or self.complete:  # bytes nobody asked for: not to be trusted
            self._close()
            return
        self._unshown += len(data)  # progress (the head's end, body bytes) resets it
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"malformed answer: {exc}"))
            return
        if self._unshown > MAX_HEAD_BYTES:
            what = "head" if self.response is None else "framing or trailers"
            self._fail(HttpError(f"the answer's {what} exceeds {MAX_HEAD_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.response is not None and not self.complete and self.response.until_close:
            self.on_message_complete()  # a body framed by the end of the connection
        elif self.head is not None and not self.complete:
            self._fail(HttpError("the connection closed before the answer was complete"))

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: drop it and the connection
            self.keep_alive = False
            self._close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:  # a trailer: nothing here reads them
            return
        self._fields.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue): the real one follows
            self._fields = []
            return
        self._unshown = 0
        try:
            self.response = Response(self, status, CIMultiDictProxy(CIMultiDict(self._fields)))
        except HttpError as exc:
            self._fail(exc)
            return
        if self.head is not None and not self.head.done():
            self.head.set_result(self.response)

    def on_body(self, chunk: bytes) -> None:
        if self.complete:
            return
        self._unshown = 0
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self.response is None or self.complete:
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # only known inside the callback
        self._cancel_timer()
        self._wake()
        if self.released:
            self.pool.put(self)

    # -- the exchange ---------------------------------------------------------------------

    def send(self, head: bytes, body: bytes | None, deadline: float | None) -> asyncio.Future[Response]:
        """Write one request; the future holds the answer once its head is read."""
        loop = asyncio.get_running_loop()
        self._reset()
        self.head = loop.create_future()
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._expire)
        assert self.transport is not None
        self.transport.write(head + body if body else head)
        return self.head

    def take(self) -> bytes | None:
        """The next buffered body chunk, resuming reads once the reader has caught up."""
        if not self.chunks:
            return None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self._paused and self.buffered <= HIGH_WATER // 4 and self.transport is not None:
            self.transport.resume_reading()
            self._paused = False
        return chunk

    async def wait(self) -> None:
        """Until a chunk arrives, the answer completes or the exchange fails."""
        self._wakeup = asyncio.get_running_loop().create_future()
        await self._wakeup

    def release(self) -> None:
        """The reader is done: keep the connection if its answer completed cleanly."""
        if self.released:
            return
        self.released = True
        if self.complete:
            self.pool.put(self)
        else:
            self._cancel_timer()
            if self.head is not None and not self.head.done():
                self.head.cancel()  # nobody waits for it any more
            self._close()

    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and not self.closed
            and self.keep_alive
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def _expire(self) -> None:
        self._timer = None
        self._fail(TimeoutError())

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self._wake()
        self._cancel_timer()
        self._close()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.abort()


class Response:
    """An answer whose head has arrived; ``content.iter_any()`` streams the body."""

    __slots__ = ("_connection", "_decoder", "headers", "status", "until_close")

    def __init__(self, connection: Connection, status: int, headers: CIMultiDictProxy[str]) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers
        coding = headers.get("content-encoding", "identity").strip().lower()
        if coding not in _DECODERS and coding != "identity":
            raise HttpError(f"the answer is encoded as {coding!r}, which mcpfence does not decode")
        self._decoder = zlib.decompressobj(_DECODERS[coding]) if coding in _DECODERS else None
        framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        self.until_close = not framed and status not in _NO_BODY

    @property
    def content(self) -> Response:
        return self

    @property
    def content_length(self) -> int | None:
        """The declared body length, unless it is encoded (then only the decoded size counts)."""
        declared = self.headers.get("content-length")
        return int(declared) if declared is not None and self._decoder is None else None

    async def read(self) -> bytes:
        """The whole body (callers bound it by ``content_length`` first)."""
        connection = self._connection
        if connection.complete and self._decoder is None:  # the common case: it all came at once
            return b"".join(iter(connection.take, None))  # take() resumes a paused socket
        return b"".join([chunk async for chunk in self.iter_any()])

    async def iter_any(self) -> AsyncIterator[bytes]:
        """Each chunk of the body as it arrives (decoded)."""
        connection = self._connection
        while True:
            chunk = connection.take()
            if chunk is not None:
                if self._decoder is None:
                    yield chunk
                else:
                    for piece in self._decode(chunk):
                        yield piece
            elif connection.error is not None:
                raise connection.error
            elif connection.complete:
                if self._decoder is not None and (rest := self._decoder.flush()):
                    yield rest
                return
            else:
                await connection.wait()

    def _decode(self, chunk: bytes) -> list[bytes]:
        assert self._decoder is not None
        pieces = []
        try:
            while chunk:
                pieces.append(self._decoder.decompress(chunk, DECODE_STEP))
                chunk = self._decoder.unconsumed_tail
        except zlib.error as exc:
            raise HttpError(f"the answer's encoded body is corrupt: {exc}") from None
        return pieces

    def release(self) -> None:
        self._connection.release()


class Pool:
    """Keep-alive connections to one origin, at most ``limit`` open at once."""

    def __init__(self, url: str, limit: int, connect_timeout: float) -> None:
        self.origin = Origin(url)
        self.limit = limit
        self.connect_timeout = connect_timeout
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tls = ssl.create_default_context() if self.origin.tls else None

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        deadline: float | None = None,
    ) -> Response:
        """Send a request and wait for its answer's head; the caller must ``release()`` it."""
        head = _head(method, target(url), self.origin, headers, body)
        connection = await self._acquire(deadline)
        try:
            return await connection.send(head, body, deadline)
        except BaseException:
            connection.release()
            raise

    @property
    def connections(self) -> int:
        """Connections open or being opened (idle ones included)."""
        return len(self._open)

    def put(self, connection: Connection) -> None:
        """An exchange ended: keep the connection for the next, or close it."""
        if not connection.reusable():
            connection._close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        connection.head = None
        self._idle.append(connection)
        self._wake_one()

    def forget(self, connection: Connection) -> None:
        """A connection closed: it no longer counts against the limit."""
        if connection in self._open:
            self._open.discard(connection)
            if connection in self._idle:
                self._idle.remove(connection)
            self._wake_one()

    async def close(self) -> None:
        for connection in list(self._open):
            connection._close()

    async def _acquire(self, deadline: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            while self._idle:
                connection = self._idle.pop()
                if loop.time() - connection.idle_since < IDLE_SECONDS and connection.reusable():
                    return connection
                connection._close()
            if len(self._open) < self.limit:
                return await self._connect(deadline)
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(self, deadline: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        connection = Connection(self)
        self._open.add(connection)
        until = loop.time() + self.connect_timeout
        try:
            async with asyncio.timeout_at(until if deadline is None else min(until, deadline)):
                await loop.create_connection(
                    lambda: connection,
                    self.origin.host,
                    self.origin.port,
                    ssl=self._tls,
                    server_hostname=self.origin.host if self._tls is not None else None,
                )
        except BaseException:
            self.forget(connection)
            raise
        return connection

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

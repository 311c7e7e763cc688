"""How mcpfence reaches an upstream MCP server: the interface, and its pooled HTTP client.

The relay speaks to an :class:`HttpUpstream`: open a request, get a response
head, read or stream its body. :class:`Upstream` is that over the network; an
MCP server that is an ASGI app in the same process is reached through
``asgi_upstream.AsgiUpstream`` instead (mcpfence as middleware), so both run
the same relay code.

The client is ``http1.Pool``, chosen by measurement (docs/explanation/performance.md):
a forwarder built on it costs half the CPU per call of the same forwarder on aiohttp,
which in turn costs a fifth of httpx. One pool per route keeps
connections alive across calls; every request has a bounded connect time, and POSTs a
bounded total time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final, Protocol

from mcpfence import jsonrpc
from mcpfence.transport.http1 import HttpError, Pool, Response
from mcpfence.transport.limits import StreamCaps, StreamSlots
from mcpfence.urls import redact_url, redact_urls

# The most of one upstream JSON answer mcpfence holds in memory to check it.
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024


class UpstreamError(jsonrpc.JsonRpcError):
    """The upstream could not be reached or did not answer: -32603 with a clear message.

    Any URL in the message (ours or one quoted by a client library) loses its userinfo
    and query: the message reaches clients, spans and logs.
    """

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(jsonrpc.INTERNAL_ERROR, redact_urls(message), status=status)


class ResponseBody(Protocol):
    def iter_any(self) -> AsyncIterator[bytes]:
        """Each chunk of the body as it arrives."""
        ...


class UpstreamResponse(Protocol):
    """An upstream answer whose head has arrived (``http1.Response`` is one)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive response headers."""
        ...

    @property
    def content(self) -> ResponseBody: ...

    @property
    def content_length(self) -> int | None: ...

    async def read(self) -> bytes:
        """The whole body (when its length is declared and within bounds)."""
        ...

    def release(self) -> None:
        """Done with the answer: free its connection, or tell an in-process app we left."""
        ...


class HttpUpstream(Protocol):
    """An MCP server the relay forwards HTTP exchanges to.

    ``url`` is what is requested; messages name the upstream by ``shown_url``, which
    holds no credentials. ``streams`` bounds the long-lived streams it carries.
    """

    url: str
    shown_url: str
    headers: dict[str, str]
    timeout_seconds: float
    streams: StreamSlots

    async def open(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        deadline: float | None = None,
        url: str | None = None,
    ) -> UpstreamResponse: ...

    async def read(self, response: UpstreamResponse) -> bytes: ...

    def timeout_error(self) -> UpstreamError: ...

    async def close(self) -> None: ...


class Upstream:
    """An HTTP upstream: its URL, configured headers, a pooled client session, and the
    slots of the long-lived streams that pool may carry.

    ``url`` may hold credentials and is only ever requested; messages name the
    upstream by ``shown_url``, which has none.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        timeout_seconds: float,
        connections: int = 256,
        streams: StreamCaps | None = None,
    ) -> None:
        self.url = url
        self.shown_url = redact_url(url)
        self.headers = dict(headers)
        self.timeout_seconds = timeout_seconds
        self.connections = connections
        self.streams = StreamSlots(streams or StreamCaps(total=connections * 3 // 4))
        self._connect_timeout = min(10.0, timeout_seconds)
        self._pool: Pool | None = None

    @property
    def pool(self) -> Pool:
        """Keep-alive connections to the upstream, shared by every client of the route.

        No cookie jar: one would hand one client's cookies to the next (``Set-Cookie``
        goes to the client; ``Cookie`` never upstream)."""
        if self._pool is None:
            self._pool = Pool(self.url, self.connections, self._connect_timeout)
        return self._pool

    async def close(self) -> None:
        """Close the pool; the next request opens a new one."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def open(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        deadline: float | None = None,
        url: str | None = None,
    ) -> Response:
        """Send one request and wait for the response head; ``deadline`` (loop time) bounds
        the whole exchange, body included.

        ``url`` overrides the upstream's URL (a legacy SSE server's message endpoint, on
        the same origin). The caller owns the response and must ``release()`` it.
        Connection failures and timeouts become :class:`UpstreamError` (-32603), never a
        bare exception.
        """
        try:
            return await self.pool.request(method, url or self.url, headers, body, deadline)
        except TimeoutError:
            raise self.timeout_error() from None
        except OSError as exc:
            raise UpstreamError(f"upstream {self.shown_url} is unreachable: {exc}") from None
        except HttpError as exc:
            raise UpstreamError(f"upstream {self.shown_url} failed: {exc}") from None

    async def read(self, response: UpstreamResponse) -> bytes:
        try:
            return await read_body(self, response)
        except HttpError as exc:
            raise UpstreamError(f"upstream {self.shown_url} failed: {exc}") from None

    def timeout_error(self) -> UpstreamError:
        return timeout_error(self)


async def read_body(upstream: HttpUpstream, response: UpstreamResponse) -> bytes:
    """The whole body of ``response``, at most ``MAX_ANSWER_BYTES`` (the request's
    deadline applies). ``content.read(n)`` would return only what is buffered so far."""
    try:
        length = response.content_length
        if length is not None:
            if length > MAX_ANSWER_BYTES:
                raise _too_large(upstream)
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise _too_large(upstream)
            chunks.append(chunk)
        return b"".join(chunks)
    except TimeoutError:
        raise upstream.timeout_error() from None


def _too_large(upstream: HttpUpstream) -> UpstreamError:
    """Built only when needed: ``read_body`` runs on every relayed JSON answer."""
    return UpstreamError(f"upstream {upstream.shown_url} answer exceeds {MAX_ANSWER_BYTES} bytes")


def timeout_error(upstream: HttpUpstream) -> UpstreamError:
    """-32603 at HTTP 504, the same words wherever the deadline ran out."""
    return UpstreamError(
        f"upstream {upstream.shown_url} did not answer within {upstream.timeout_seconds:g}s", status=504
    )

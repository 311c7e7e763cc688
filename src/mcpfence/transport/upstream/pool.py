"""How mcpfence reaches an upstream MCP server: the interface, and its pooled HTTP client.

The relay speaks to an :class:`HttpUpstream`: open a request, get a response
head, read or stream its body. :class:`Upstream` is that over the network; an
MCP server that is an ASGI app in the same process is reached through
``upstream.asgi.AsgiUpstream`` instead (mcpfence as middleware), so both run
the same relay code.

aiohttp was chosen by measurement (benchmarks/bench_clients.py): on this
machine it forwards several times more requests per second than httpx. One
session per route keeps connections alive across calls; every request has a
bounded connect time, and POSTs a bounded total time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Final, Protocol

import aiohttp

from mcpfence import jsonrpc
from mcpfence.transport.upstream.limits import StreamCaps, StreamSlots
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
    """An upstream answer whose head has arrived (aiohttp's ``ClientResponse`` is one)."""

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
        self._session: aiohttp.ClientSession | None = None
        self._connect_timeout = min(10.0, timeout_seconds)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled client, made on first use: aiohttp wants a running event loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.connections, keepalive_timeout=30, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
                # The pool serves every client of the route: a jar would hand one client's
                # cookies to the next. Set-Cookie goes to the client; Cookie never upstream.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        """Close the pool; the next request opens a new one."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def open(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        deadline: float | None = None,
        url: str | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one request and wait for the response head; ``deadline`` (loop time) bounds
        the whole exchange, body included.

        ``url`` overrides the upstream's URL (a legacy SSE server's message endpoint).

        The caller owns the response and must ``release()`` it. Connection failures and
        timeouts become :class:`UpstreamError` (-32603), never a bare exception.
        """
        # aiohttp's own total timeout bounds the head and, later, every body read: cheaper
        # per call than an asyncio.timeout around each step.
        remaining = None if deadline is None else max(0.001, deadline - asyncio.get_running_loop().time())
        timeout = aiohttp.ClientTimeout(total=remaining, sock_connect=self._connect_timeout)
        try:
            return await self.session.request(
                method, url or self.url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            )
        except TimeoutError:
            raise self.timeout_error() from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(f"upstream {self.shown_url} is unreachable: {exc.os_error}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {self.shown_url} failed: {exc or type(exc).__name__}") from None

    async def read(self, response: UpstreamResponse) -> bytes:
        try:
            return await read_body(self, response)
        except aiohttp.ClientError as exc:
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

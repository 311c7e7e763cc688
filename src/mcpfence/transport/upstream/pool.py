"""The pooled aiohttp client: :class:`~mcpfence.transport.upstream.client.HttpUpstream` over the network.

aiohttp was chosen by measurement (benchmarks/bench_clients.py): on this
machine it forwards several times more requests per second than httpx. One
session per route keeps connections alive across calls; every request has a
bounded connect time, and POSTs a bounded total time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp

from mcpfence.transport.upstream.client import UpstreamError, UpstreamResponse, read_body, timeout_error
from mcpfence.transport.upstream.limits import StreamCaps, StreamSlots
from mcpfence.urls import redact_url


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
        self, method: str, headers: Mapping[str, str], body: bytes | None = None,
        deadline: float | None = None, url: str | None = None,
    ) -> aiohttp.ClientResponse:
        """:meth:`HttpUpstream.open <mcpfence.transport.upstream.client.HttpUpstream.open>`
        on a pooled connection."""
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

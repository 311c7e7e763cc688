"""The network client: :class:`~mcpfence.transport.upstream.client.HttpUpstream` over HTTP/1.1.

Built on ``http1.Pool`` (keep-alive connections on asyncio protocols, parsed by
httptools), chosen by measurement (docs/explanation/performance.md): a forwarder on it
costs half the CPU per call of the same forwarder on aiohttp, which in turn costs a fifth
of httpx. One pool per route keeps connections alive across calls; every request has a
bounded connect time, and POSTs a bounded total time.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcpfence.transport.upstream.client import (
    HttpError,
    UpstreamError,
    UpstreamResponse,
    read_body,
    timeout_error,
)
from mcpfence.transport.upstream.http1 import Pool, Response
from mcpfence.transport.upstream.limits import StreamCaps, StreamSlots
from mcpfence.urls import redact_url


class Upstream:
    """An HTTP upstream: its URL, configured headers, a connection pool, and the slots of
    the long-lived streams that pool may carry.

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
        self, method: str, headers: Mapping[str, str], body: bytes | None = None,
        deadline: float | None = None, url: str | None = None,
    ) -> Response:
        """:meth:`HttpUpstream.open <mcpfence.transport.upstream.client.HttpUpstream.open>`
        on a pooled connection (``url``, a legacy SSE server's endpoint, is on the same origin)."""
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

"""How the relay reaches an upstream over HTTP: the one interface every client implements.

The relay speaks to an :class:`HttpUpstream`: open a request, get a response head,
read or stream its body. ``pool.Upstream`` is that over the network (``http1``, pooled);
``asgi.AsgiUpstream`` calls an ASGI app in this process (mcpfence as middleware). Both
run the same relay code; see docs/explanation/architecture.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final, Protocol

from mcpfence import jsonrpc
from mcpfence.transport.upstream.limits import StreamSlots
from mcpfence.urls import redact_urls

# The most of one upstream JSON answer mcpfence holds in memory to check it.
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024


class HttpError(Exception):
    """An answer broke off or broke HTTP while its body was read (any client raises this)."""


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
        self, method: str, headers: Mapping[str, str], body: bytes | None = None,
        deadline: float | None = None, url: str | None = None,
    ) -> UpstreamResponse:
        """Send one request and wait for the response head; ``deadline`` (loop time) bounds
        the whole exchange, body included. ``url`` overrides the upstream's URL (a legacy
        SSE server's message endpoint).

        The caller owns the response and must ``release()`` it. Connection failures and
        timeouts become :class:`UpstreamError` (-32603), never a bare exception.
        """
        ...

    async def read(self, response: UpstreamResponse) -> bytes: ...

    def timeout_error(self) -> UpstreamError: ...

    async def close(self) -> None: ...


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

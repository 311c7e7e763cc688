"""A message-level connection to an upstream that is not relayed HTTP exchange by exchange.

stdio children, legacy HTTP+SSE servers, and Streamable HTTP servers that a
legacy SSE client reaches through mcpfence all come down to the same thing: a
pipe that carries JSON-RPC messages both ways. A :class:`Link` is that pipe; the
:class:`~mcpfence.transport.upstream.hub.Hub` above it knows about sessions and ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from mcpfence.jsonrpc import Message

# Called with each message the upstream sends, in order.
OnMessage = Callable[[Message], Awaitable[None]]
# Called once when the link dies on its own, with a sentence saying why.
OnClosed = Callable[[str], Awaitable[None]]


class Link(Protocol):
    """One live connection to an upstream server."""

    @property
    def label(self) -> str:
        """How error messages name the upstream (``stdio server `cmd` ``, a URL)."""
        ...

    async def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        """Connect (spawn, open the stream); raise ``UpstreamError`` if that fails."""
        ...

    async def send(self, message: Message) -> None:
        """Deliver one message upstream; raise ``UpstreamError`` if it cannot be."""
        ...

    async def close(self) -> None:
        """Disconnect and release everything; ``on_closed`` is not called."""
        ...


LinkFactory = Callable[[], Link]

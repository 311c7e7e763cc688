"""Bounds on what clients hold open, so that some clients cannot starve the rest.

A relayed GET stream is long-lived and holds one pooled upstream connection for
as long as it is open. Were streams unbounded, a few clients opening many would
take every connection, and new sessions and calls would wait for one until they
time out. So streams are counted per session, per client and per upstream, the
upstream's cap stays below its pool size (the rest is for POSTs), and a stream
that carries no message for a while is ended (clients reconnect when they need).

The counts are of this process's own connections, so they live in its memory:
with several replicas, each bounds its own pool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError
from mcpfence.transport.http import RETRY_AFTER


@dataclass(frozen=True)
class StreamCaps:
    """How many streams may be open at once, and how long one may stay idle."""

    total: int = 192
    per_client: int = 32
    per_session: int = 1
    idle_seconds: float = 600.0


class StreamSlots:
    """The long-lived streams open on one upstream, by client and by session."""

    def __init__(self, caps: StreamCaps) -> None:
        self.caps = caps
        self.open = 0
        self._clients: Counter[str] = Counter()
        self._sessions: Counter[str] = Counter()

    def take(self, client: str, session: str) -> AbstractContextManager[None]:
        """A slot, given back when the returned context exits; 409, 429 or 503 past a cap."""
        caps = self.caps
        if session and self._sessions[session] >= caps.per_session:
            reason = f"this session already has {caps.per_session} stream(s) open"
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, reason, status=409)
        if self._clients[client] >= caps.per_client:
            reason = f"this client already has {caps.per_client} streams open"
            raise JsonRpcError(jsonrpc.INVALID_REQUEST, reason, status=429, headers=[RETRY_AFTER])
        if self.open >= caps.total:
            reason = f"the upstream already carries {caps.total} streams; try again later"
            raise JsonRpcError(jsonrpc.INTERNAL_ERROR, reason, status=503, headers=[RETRY_AFTER])
        self.open += 1
        self._clients[client] += 1
        self._sessions[session] += 1
        return self._held(client, session)

    @contextmanager
    def _held(self, client: str, session: str) -> Iterator[None]:
        try:
            yield
        finally:
            self.open -= 1
            for counter, key in ((self._clients, client), (self._sessions, session)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

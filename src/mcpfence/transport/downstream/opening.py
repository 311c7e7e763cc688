"""How every client request begins: who is calling, what it sent, and whether it may.

The relay, hosted sessions and the legacy SSE endpoint all open a request here:
authenticate (401), read and check the body (413, 415, 400), count it against the
route's rate limit (429). So a rule about API tokens, bodies or limits is written
once, and a request is refused before anything of it reaches the pipeline. See
docs/explanation/architecture.md for where this sits on a request's way.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcpfence.access.guard import OPEN, AccessGuard
from mcpfence.access.ratelimit import Caller
from mcpfence.jsonrpc import Message
from mcpfence.transport.downstream.messages import ParamSchemas, read_messages
from mcpfence.transport.http import Request


@dataclass(slots=True)
class Incoming:
    """One POST as admitted: its messages, its client, and the headers its answer carries."""

    request: Request
    messages: list[Message]
    batch: bool
    client_id: str
    # RateLimit-* for the answer; a hosted session's answer adds its Mcp-Session-Id.
    headers: list[tuple[bytes, bytes]]


class Opening:
    """One route's opening checks; ``schemas`` enables the ``Mcp-Param-*`` check."""

    __slots__ = ("guard", "max_body_bytes", "schemas")

    def __init__(
        self, max_body_bytes: int, guard: AccessGuard | None = None, schemas: ParamSchemas | None = None
    ) -> None:
        self.guard = guard or OPEN
        self.max_body_bytes = max_body_bytes
        self.schemas = schemas

    def client(self, request: Request) -> str:
        """The client id (the API token's name; ``""`` when the route needs none), or 401."""
        return self.guard.authenticate(request.headers.get("authorization"))

    async def admit(
        self,
        request: Request,
        client_id: str,
        session_id: str = "",
        *,
        verified: bool = False,
        protocol_version: str = "",
    ) -> Incoming:
        """Read the POST's messages and count them; raises JsonRpcError to refuse it.

        ``verified``: the transport knows ``session_id`` itself (a hosted session), so a
        ``key: session`` limit may count by it; ``protocol_version``: the session's, for a
        body whose revision no header names (legacy SSE).
        """
        messages, batch = await read_messages(request, self.max_body_bytes, protocol_version, self.schemas)
        if self.guard.counter is None:  # no rate limit: nothing to count, no headers
            return Incoming(request, messages, batch, client_id, [])
        who = Caller(session_id, client_id, request.peer, verified)
        return Incoming(request, messages, batch, client_id, await self.guard.admit(who, messages))

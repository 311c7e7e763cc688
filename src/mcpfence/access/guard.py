"""Who may use a route and how fast: API-token auth and rate limits, at the HTTP layer.

Both answer with HTTP statuses (401, 429) and headers a client or gateway acts
on, so they run in the transport before any message enters the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mcpfence import jsonrpc
from mcpfence.access.ratelimit import Caller, RateCounter, rate_limit_headers
from mcpfence.access.tokens import ApiTokens
from mcpfence.jsonrpc import Message
from mcpfence.toolcall import parse_tool_call

RATE_LIMITED: Final = -32000


def counted_requests(messages: Sequence[Message]) -> list[str | None]:
    """One entry per JSON-RPC request (the tool a ``tools/call`` names, else None)."""
    counted: list[str | None] = []
    for message in messages:
        if not jsonrpc.is_request(message):
            continue
        call = parse_tool_call(message)
        counted.append(call.name if call is not None else None)
    return counted


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class AccessGuard:
    """The checks one route applies to every request; with no tokens and no limit it is open."""

    def __init__(
        self, route: str, api_tokens: ApiTokens | None = None, counter: RateCounter | None = None
    ) -> None:
        self.route = route
        self.api_tokens = api_tokens
        self.counter = counter

    def authenticate(self, authorization: str | None) -> str:
        """The client id (API token name), ``""`` when the route needs none; 401 otherwise."""
        if self.api_tokens is None:
            return ""
        name = self.api_tokens.verify(authorization)
        if name is None:
            raise jsonrpc.JsonRpcError(
                jsonrpc.INVALID_REQUEST,
                "this route requires Authorization: Bearer <API token>",
                status=401,
                headers=[(b"www-authenticate", b'Bearer realm="mcpfence"')],
            )
        return name

    async def admit(self, who: Caller, messages: Sequence[Message]) -> list[tuple[bytes, bytes]]:
        """Count each request of a POST; the ``RateLimit-*`` headers to answer with, or 429."""
        requests = counted_requests(messages) if self.counter is not None else []
        if self.counter is None or not requests:
            return []
        decision = await self.counter.take(self.route, who, requests)
        headers = _raw(rate_limit_headers(decision))
        if not decision.allowed:
            raise jsonrpc.JsonRpcError(
                RATE_LIMITED,
                f"rate limit of route {self.route} exceeded; retry after {decision.retry_after}s",
                status=429,
                headers=headers,
            )
        return headers


    async def session_issued(self, session_id: str) -> None:
        """The upstream opened ``session_id``: a ``key: session`` limit may count by it."""
        if self.counter is not None and self.counter.limit.key == "session":
            await self.counter.session_issued(self.route, session_id)


# For routes that check nothing: authenticate() is "" and admit() adds no headers.
OPEN = AccessGuard("")

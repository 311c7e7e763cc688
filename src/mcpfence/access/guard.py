"""Who may use a route and how fast: API-token auth and rate limits, at the HTTP layer.

Both answer with HTTP statuses (401, 429) and headers a client or gateway acts
on, so they run in the transport before any message enters the pipeline.
"""

from __future__ import annotations

from typing import Final

from mcpfence import jsonrpc
from mcpfence.access.ratelimit import RateLimit, RateLimiter, rate_limit_headers
from mcpfence.access.tokens import ApiTokens

RATE_LIMITED: Final = -32000


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class AccessGuard:
    """The checks one route applies to every request; with no tokens and no limit it is open."""

    def __init__(
        self, route: str, api_tokens: ApiTokens | None = None, limit: RateLimit | None = None
    ) -> None:
        self.route = route
        self.api_tokens = api_tokens
        self.limiter = RateLimiter(limit) if limit is not None else None

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

    def admit(self, session_id: str, client_id: str, tool: str | None) -> list[tuple[bytes, bytes]]:
        """Take one request from the bucket; the ``RateLimit-*`` headers to answer with, or 429."""
        if self.limiter is None:
            return []
        key = self.limiter.limit.bucket_key(self.route, session_id=session_id, client_id=client_id, tool=tool)
        decision = self.limiter.check(key)
        headers = _raw(rate_limit_headers(decision))
        if not decision.allowed:
            raise jsonrpc.JsonRpcError(
                RATE_LIMITED,
                f"rate limit of route {self.route} exceeded; retry after {decision.retry_after}s",
                status=429,
                headers=headers,
            )
        return headers


# For routes that check nothing: authenticate() is "" and admit() adds no headers.
OPEN = AccessGuard("")

"""Rate limits counted once for the whole cluster: a token bucket per key in Redis.

One script per admission (mcpfence.cluster.precall), so one round trip: it checks
whether the session id was seen issued (``key: session``), picks the session's
buckets or the client's accordingly, refills them by Redis's own clock (replicas'
clocks never disagree), and takes every token or none. When the POST carries a
``tools/call`` on a route whose policies read the session, the same script also
reads the session memory (:class:`SessionRide`). A Redis failure refuses the
request (-32603): a limit that cannot be counted is not silently lifted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from mcpfence import jsonrpc
from mcpfence.access.ratelimit import SESSION_TTL_SECONDS, BucketKey, Caller, RateDecision, RateLimit
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.precall import BeforeCall, BucketTake
from mcpfence.cluster.redis import KEY_PREFIX
from mcpfence.cluster.session import SessionRide
from mcpfence.cluster.store import shared

log = logging.getLogger("mcpfence")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RedisRateCounter:
    """A :class:`mcpfence.access.ratelimit.RateCounter` in Redis, shared by every replica."""

    def __init__(
        self,
        client: aioredis.Redis,
        limit: RateLimit,
        prefix: str = KEY_PREFIX,
        ride: SessionRide | None = None,
    ) -> None:
        self.limit = limit
        self._redis = client
        self._prefix = prefix
        self._before_call = BeforeCall(client)
        self._ride = ride
        # A bucket idle this long is full again: Redis forgets it.
        self._bucket_ttl_ms = str(int(limit.per_seconds * 1000) + 1000)

    def _session_key(self, route: str, session_id: str) -> str:
        return f"{self._prefix}issued:{_digest(route)}:{_digest(session_id)}"

    def _bucket_key(self, key: BucketKey) -> str:
        route, who, tool = key
        return f"{self._prefix}rl:{_digest(repr((route, who, tool, self.limit)))}"

    async def take(self, route: str, caller: Caller, tools: Sequence[str | None]) -> RateDecision:
        check = self.limit.key == "session" and bool(caller.session_id) and not caller.session_verified
        by_session = self.limit.counts(route, caller, tools, session_known=True)
        by_client = self.limit.counts(route, caller, tools, session_known=caller.session_verified)
        keys = [self._session_key(route, caller.session_id)]
        keys += [self._bucket_key(key) for key in by_session]
        keys += [self._bucket_key(key) for key in by_client]
        args = [
            str(self.limit.requests),
            repr(self.limit.rate),
            self._bucket_ttl_ms,
            str(int(SESSION_TTL_SECONDS)),
            "1" if check else "0",
            *(str(count) for count in by_session.values()),
        ]
        ride = self._ride.along(caller, tools) if self._ride is not None else None
        try:
            fetched = await self._before_call(ride.read if ride else None, BucketTake(keys, args))
        except SharedStateUnavailable as exc:
            message = f"rate limit of route {route} could not be counted: {exc}"
            raise jsonrpc.JsonRpcError(jsonrpc.INTERNAL_ERROR, message, status=503) from None
        if ride is not None:
            ride.deliver(fetched)
        return self.limit.decision(fetched.allowed, fetched.fewest, fetched.deficit)

    async def session_issued(self, route: str, session_id: str) -> None:
        # Unrecorded, the session is counted by its client: stricter, never looser.
        marker = self._redis.set(self._session_key(route, session_id), "1", ex=int(SESSION_TTL_SECONDS))
        try:
            await shared(marker)
        except SharedStateUnavailable as exc:
            log.warning("route %s: session not recorded for rate limits: %s", route, exc)

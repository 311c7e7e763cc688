"""Rate limits counted once for the whole cluster: a token bucket per key in Redis.

One Lua script per admission, so one round trip: it checks whether the session
id was seen issued (``key: session``), picks the session's buckets or the
client's accordingly, refills them by Redis's own clock (replicas' clocks never
disagree), and takes every token or none. A Redis failure refuses the request
(-32603): a limit that cannot be counted is not silently lifted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from mcpfence import jsonrpc
from mcpfence.access.ratelimit import SESSION_TTL_SECONDS, BucketKey, Caller, RateDecision, RateLimit
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.redis import KEY_PREFIX
from mcpfence.cluster.store import shared

log = logging.getLogger("mcpfence")

# KEYS[1]: the issued-session marker; KEYS[2..n+1]: the session's buckets; KEYS[n+2..]: the client's.
# ARGV: capacity, tokens per second, bucket TTL ms, session TTL s, check session (0/1), then n counts.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = (#KEYS - 1) / 2
local first = 1 + n
if ARGV[5] == '1' and redis.call('EXPIRE', KEYS[1], ARGV[4]) == 1 then first = 1 end
local tokens, deficit = {}, -capacity
for i = 1, n do
  local state = redis.call('HMGET', KEYS[first + i], 'tokens', 'at')
  local held = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  held = math.min(capacity, held + math.max(0, now - at) * rate)
  tokens[i] = held
  deficit = math.max(deficit, tonumber(ARGV[5 + i]) - held)
end
local allowed = deficit <= 0
local fewest = capacity
for i = 1, n do
  local left = tokens[i]
  if allowed then left = left - tonumber(ARGV[5 + i]) end
  fewest = math.min(fewest, left)
  redis.call('HSET', KEYS[first + i], 'tokens', tostring(left), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[first + i], ARGV[3])
end
return {allowed and 1 or 0, tostring(fewest), tostring(deficit)}
"""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RedisRateCounter:
    """A :class:`mcpfence.access.ratelimit.RateCounter` in Redis, shared by every replica."""

    def __init__(self, client: aioredis.Redis, limit: RateLimit, prefix: str = KEY_PREFIX) -> None:
        self.limit = limit
        self._redis = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
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
        try:
            allowed, fewest, deficit = await shared(self._take(keys=keys, args=args))
        except SharedStateUnavailable as exc:
            message = f"rate limit of route {route} could not be counted: {exc}"
            raise jsonrpc.JsonRpcError(jsonrpc.INTERNAL_ERROR, message, status=503) from None
        return self.limit.decision(bool(allowed), float(fewest), float(deficit))

    async def session_issued(self, route: str, session_id: str) -> None:
        # Unrecorded, the session is counted by its client: stricter, never looser.
        marker = self._redis.set(self._session_key(route, session_id), "1", ex=int(SESSION_TTL_SECONDS))
        try:
            await shared(marker)
        except SharedStateUnavailable as exc:
            log.warning("route %s: session not recorded for rate limits: %s", route, exc)

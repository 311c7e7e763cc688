"""The one round trip a POST costs before its requests are decided (cluster mode).

One Lua script does what the route uses, in one ``EVALSHA`` (redis-py loads the
script again on ``NOSCRIPT``): it takes rate-limit tokens (exact across replicas,
timed by Redis's own clock) and, if they were granted, reads the session memory
the route's policies decide with, renewing its idle expiry. A route with a rate
limit and history-based policies thus costs one round trip per call, not three.

What happens after the answer is not merged in here: a call's record holds its
outcome, and the client's next call may reach another replica, so the record is
written before the answer leaves (see docs/how-to/cluster.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from mcpfence.cluster.store import shared

# KEYS: the session memory's calls list, tokens list and weights hash (when ARGV[1] is not '0'),
#   then the rate limit's: the issued-session marker, its n session buckets, its n client buckets.
# ARGV: the session memory's idle TTL in seconds ('0': none to read), then the rate limit's:
#   capacity, tokens per second, bucket TTL ms, marker TTL s, check the marker (0/1), n counts.
# Returns {allowed 1/0, fewest tokens left, largest shortfall[, calls, tokens]}.
_SCRIPT = """
local function take(k, a)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
  local capacity, rate = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local n = (#KEYS - k - 1) / 2
  local first = k + 1 + n
  if ARGV[a + 5] == '1' and redis.call('EXPIRE', KEYS[k + 1], ARGV[a + 4]) == 1 then first = k + 1 end
  local tokens, deficit = {}, -capacity
  for i = 1, n do
    local state = redis.call('HMGET', KEYS[first + i], 'tokens', 'at')
    local held = tonumber(state[1]) or capacity
    local at = tonumber(state[2]) or now
    held = math.min(capacity, held + math.max(0, now - at) * rate)
    tokens[i] = held
    deficit = math.max(deficit, tonumber(ARGV[a + 5 + i]) - held)
  end
  local allowed = deficit <= 0
  local fewest = capacity
  for i = 1, n do
    local left = tokens[i]
    if allowed then left = left - tonumber(ARGV[a + 5 + i]) end
    fewest = math.min(fewest, left)
    redis.call('HSET', KEYS[first + i], 'tokens', tostring(left), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[first + i], ARGV[a + 3])
  end
  return {allowed and 1 or 0, tostring(fewest), tostring(deficit)}
end

local ttl = tonumber(ARGV[1])
local memory = ttl > 0 and 3 or 0
local verdict = {1, '0', '0'}
if #KEYS > memory then
  verdict = take(memory, 1)
  if verdict[1] == 0 then return verdict end
end
if memory == 0 then return verdict end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
verdict[4] = redis.call('LRANGE', KEYS[1], 0, -1)
verdict[5] = redis.call('LRANGE', KEYS[2], 0, -1)
return verdict
"""


@dataclass(frozen=True)
class MemoryRead:
    """A session's memory to read: its calls, tokens and weights keys, and its idle TTL."""

    keys: Sequence[str]
    ttl_seconds: int


@dataclass(frozen=True)
class BucketTake:
    """Rate-limit tokens to take: the marker and bucket keys, and the script's arguments."""

    keys: Sequence[str]
    args: Sequence[str]


@dataclass(frozen=True)
class Fetched:
    """What the script answered: the rate limit's verdict, and the memory when it was read."""

    allowed: bool
    fewest: float
    deficit: float
    calls: list[str] | None = None
    tokens: list[str] | None = None


class BeforeCall:
    """Runs the script; a Redis failure raises :class:`SharedStateUnavailable`."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(_SCRIPT)

    async def __call__(self, memory: MemoryRead | None, take: BucketTake | None) -> Fetched:
        keys = [*(memory.keys if memory else ()), *(take.keys if take else ())]
        args = [str(memory.ttl_seconds) if memory else "0", *(take.args if take else ())]
        reply = await shared(self._script(keys=keys, args=args))
        allowed, fewest, deficit = bool(reply[0]), float(reply[1]), float(reply[2])
        if len(reply) < 5:
            return Fetched(allowed, fewest, deficit)
        return Fetched(allowed, fewest, deficit, list(reply[3]), list(reply[4]))

"""Session memory (``session.calls``, opaque tokens seen) shared by every replica.

Before a ``tools/call`` on a route whose policies read the session, the replica
fetches the session's calls and tokens in one round trip and decides with them;
after the answer, one Lua script appends the call (and new tokens), trims the
oldest past the byte and entry bounds, and renews the idle expiry. The answer
leaves only once that write is done, so the client's next call, on whichever
replica, is decided on the whole history. Routes whose policies never read the
session cost no round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.redis import KEY_PREFIX
from mcpfence.cluster.store import shared
from mcpfence.session import MAX_SESSION_WEIGHT, MAX_TOKEN_WEIGHT, SessionMemory, SessionState

log = logging.getLogger("mcpfence")

# KEYS: calls list, tokens list, weights hash. ARGV: call JSON, max calls, max tokens,
# calls budget (bytes), tokens budget (bytes), TTL seconds, then the new tokens.
_APPEND = """
local function append(list, field, items, max_items, budget)
  for _, item in ipairs(items) do
    redis.call('RPUSH', list, item)
    redis.call('HINCRBY', KEYS[3], field, #item)
  end
  local weight = tonumber(redis.call('HGET', KEYS[3], field) or '0')
  while weight > budget or redis.call('LLEN', list) > max_items do
    local oldest = redis.call('LPOP', list)
    if not oldest then break end
    weight = redis.call('HINCRBY', KEYS[3], field, -#oldest)
  end
end
append(KEYS[1], 'calls', {ARGV[1]}, tonumber(ARGV[2]), tonumber(ARGV[4]))
append(KEYS[2], 'tokens', {unpack(ARGV, 7)}, tonumber(ARGV[3]), tonumber(ARGV[5]))
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return 1
"""


class RedisSessionMemory(SessionMemory):
    """:class:`SessionMemory` whose states are loaded from and appended to Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str = KEY_PREFIX, **bounds: Any) -> None:
        super().__init__(**bounds)
        self._redis = client
        self._prefix = prefix
        self._append = client.register_script(_APPEND)

    def _keys(self, key: str) -> list[str]:
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        base = f"{self._prefix}session:{digest}"
        return [f"{base}:calls", f"{base}:tokens", f"{base}:weights"]

    async def load(self, key: str) -> None:
        calls_key, tokens_key, _ = self._keys(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lrange(calls_key, 0, -1)
            pipe.lrange(tokens_key, 0, -1)
            calls, tokens = await shared(pipe.execute())
        state = SessionState(deque(), self.max_calls)
        for raw in calls:
            call = json.loads(raw)
            state.record_call(call["tool"], call["args"], call["ok"], call["result"])
        state.remember_tokens(tokens, self.max_tokens)
        self.install(key, state)

    def store(self, key: str, call: Mapping[str, Any], tokens: list[str]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._store(key, call, tokens))

    async def _store(self, key: str, call: Mapping[str, Any], tokens: list[str]) -> None:
        args = [
            json.dumps(call, separators=(",", ":")),
            str(self.max_calls),
            str(self.max_tokens),
            str(MAX_SESSION_WEIGHT),
            str(MAX_TOKEN_WEIGHT),
            str(int(self.ttl_seconds)),
            *tokens,
        ]
        try:
            await shared(self._append(keys=self._keys(key), args=args))
        except SharedStateUnavailable as exc:
            # The call already ran upstream; its answer still goes out. The next call of the
            # session is refused while Redis stays unreachable (prepare fails closed).
            log.error("a call could not be recorded in the shared session memory: %s", exc)

"""Session memory (``session.calls``, opaque tokens seen) shared by every replica.

Before a ``tools/call`` on a route whose policies read the session, the replica
reads the session's calls and tokens in the one script the call costs
(mcpfence.cluster.precall): the rate limit's, when the route has one (a
:class:`SessionRide`), else its own. After the answer, a write happens only when
there is something new to keep: the call's record, when a policy of the route
reads ``session`` (the record holds the call's outcome, known only now), and
tokens not seen before, when a policy checks opaque tokens. One Lua script
appends them, trims the oldest past the byte and entry bounds, and renews the idle
expiry; the answer leaves only once it is done, so the client's next call, on
whichever replica, is decided on the whole history. Routes whose policies never
read the session cost no round trip.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from mcpfence.access.ratelimit import Caller
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.precall import BeforeCall, Fetched, MemoryRead
from mcpfence.cluster.redis import KEY_PREFIX
from mcpfence.cluster.store import shared
from mcpfence.session import MAX_SESSION_WEIGHT, MAX_TOKEN_WEIGHT, SessionMemory, SessionState

log = logging.getLogger("mcpfence")

# KEYS: calls list, tokens list, weights hash. ARGV: max calls, max tokens, calls budget
# (bytes), tokens budget (bytes), TTL seconds, how many calls (0 or 1), the calls, the tokens.
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
local calls = tonumber(ARGV[6])
append(KEYS[1], 'calls', {unpack(ARGV, 7, 6 + calls)}, tonumber(ARGV[1]), tonumber(ARGV[3]))
append(KEYS[2], 'tokens', {unpack(ARGV, 7 + calls)}, tonumber(ARGV[2]), tonumber(ARGV[4]))
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 1
"""

# The session memory this request's rate-limit script read, moments ago, for :meth:`load`.
# asyncio gives every request its own context, so no request ever sees another's.
_FETCHED: ContextVar[tuple[str, SessionState] | None] = ContextVar("mcpfence_session_fetched", default=None)


class RedisSessionMemory(SessionMemory):
    """:class:`SessionMemory` whose states are read from and appended to Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str = KEY_PREFIX, **bounds: Any) -> None:
        super().__init__(**bounds)
        self._redis = client
        self._prefix = prefix
        self._append = client.register_script(_APPEND)
        self._before_call = BeforeCall(client)

    def _keys(self, key: str) -> list[str]:
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        base = f"{self._prefix}session:{digest}"
        return [f"{base}:calls", f"{base}:tokens", f"{base}:weights"]

    def read(self, key: str) -> MemoryRead:
        """What the before-call script reads (and keeps alive) of ``key``'s memory."""
        return MemoryRead(self._keys(key), int(self.ttl_seconds))

    def state(self, calls: Sequence[str], tokens: Sequence[str]) -> SessionState:
        """A session's state from its lists as Redis holds them."""
        state = SessionState(deque(), self.max_calls)
        for raw in calls:
            call = json.loads(raw)
            state.record_call(call["tool"], call["args"], call["ok"], call["result"])
        state.remember_tokens(tokens, self.max_tokens)
        return state

    async def load(self, key: str) -> None:
        fetched = _FETCHED.get()
        if fetched is not None and fetched[0] == key:
            _FETCHED.set(None)  # read along with this request's rate limit: no second round trip
            self.install(key, fetched[1])
            return
        answer = await self._before_call(self.read(key), None)
        self.install(key, self.state(answer.calls or [], answer.tokens or []))

    def store(self, key: str, call: Mapping[str, Any] | None, tokens: list[str]) -> asyncio.Task[None] | None:
        if call is None and not tokens:
            return None  # nothing new: no write
        return asyncio.get_running_loop().create_task(self._store(key, call, tokens))

    async def _store(self, key: str, call: Mapping[str, Any] | None, tokens: list[str]) -> None:
        calls = [json.dumps(call, separators=(",", ":"))] if call is not None else []
        args = [
            str(self.max_calls),
            str(self.max_tokens),
            str(MAX_SESSION_WEIGHT),
            str(MAX_TOKEN_WEIGHT),
            str(int(self.ttl_seconds)),
            str(len(calls)),
            *calls,
            *tokens,
        ]
        try:
            await shared(self._append(keys=self._keys(key), args=args))
        except SharedStateUnavailable as exc:
            # The call already ran upstream; its answer still goes out. The next call of the
            # session is refused while Redis stays unreachable (prepare fails closed).
            log.error("a call could not be recorded in the shared session memory: %s", exc)


@dataclass(frozen=True)
class RiddenRead:
    """One request's session memory, read by the script that counts its rate limit."""

    memory: RedisSessionMemory
    key: str

    @property
    def read(self) -> MemoryRead:
        return self.memory.read(self.key)

    def deliver(self, answer: Fetched) -> None:
        """Hand what the script read to this request's :meth:`RedisSessionMemory.load`."""
        if answer.calls is not None and answer.tokens is not None:
            _FETCHED.set((self.key, self.memory.state(answer.calls, answer.tokens)))


class SessionRide:
    """A route's session memory, read by its rate-limit script: one round trip for both.

    ``reads_session`` is asked per call, so a policy reload takes effect at once.
    """

    def __init__(self, memory: RedisSessionMemory, route: str, reads_session: Callable[[str], bool]) -> None:
        self.memory = memory
        self.route = route
        self._reads_session = reads_session

    def along(self, caller: Caller, tools: Sequence[str | None]) -> RiddenRead | None:
        """The memory the policy addon will load for this POST (it has a ``tools/call``), if any."""
        if all(tool is None for tool in tools) or not self._reads_session(self.route):
            return None
        return RiddenRead(self.memory, self.memory.key(self.route, caller.session_id, caller.client_id))

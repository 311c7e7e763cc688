"""Per-session memory: earlier calls and opaque tokens seen, bounded in size and time.

One store serves both the opaque-token check and the CEL variable ``session.calls`` (both in
docs/reference/policies.md). Beyond ``{tool, args, ok}`` each call keeps
its ``result`` (the tool's ``structuredContent``, when small), so a policy can
check a call against what an earlier one returned (a DataTable's columns).
Memory is keyed by route plus the session id, else the client, else the route
alone (stateless traffic from anonymous clients). It lives in process memory
only: bounded weight (roughly bytes) and entries per session, bounded sessions,
and idle sessions expire, so an agent cannot grow it without limit, nor make
every later policy evaluation slower by having large results remembered. A call
whose arguments alone outweigh the session budget is remembered by its tool and
outcome only.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcpfence.policy.opaque import TokenMemory

# Weights count characters of strings plus one per value (about bytes of JSON).
# A remembered result may weigh this much; a larger one is remembered as None.
MAX_REMEMBERED_RESULT = 16_384
# All remembered calls of one session together; the oldest go first.
MAX_SESSION_WEIGHT = 65_536
# All remembered opaque tokens of one session together.
MAX_TOKEN_WEIGHT = 65_536


def _weight(value: Any, budget: int) -> int | None:
    """What ``value`` weighs, or None once it exceeds ``budget`` (counting stops there)."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        total += len(item) + 1 if isinstance(item, str) else 1
        if total > budget:
            return None
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return total


def remembered(result: Any) -> Any:
    """What ``session.calls`` keeps of a structured result: all of it when small, else None."""
    return result if result is not None and _weight(result, MAX_REMEMBERED_RESULT) is not None else None


@dataclass
class SessionState:
    """What one session has done so far."""

    calls: deque[Mapping[str, Any]]
    max_calls: int = 100
    tokens: TokenMemory = field(default_factory=TokenMemory)
    seen: float = field(default_factory=time.monotonic)
    _weights: deque[int] = field(default_factory=deque)
    _calls_weight: int = 0
    _tokens_weight: int = 0

    def record_call(
        self, tool: str, args: Mapping[str, Any], ok: bool, result: Any = None
    ) -> Mapping[str, Any]:
        """Remember a forwarded call (its structured result only when small); the oldest
        calls go while the session's calls weigh more than ``MAX_SESSION_WEIGHT``."""
        call = {"tool": tool, "args": args, "ok": ok, "result": remembered(result)}
        weight = _weight(call, MAX_SESSION_WEIGHT)
        if weight is None:  # arguments alone over the whole budget: keep the call, not them
            call, weight = {**call, "args": {}, "result": None}, 16 + len(tool)
        self.calls.append(call)
        self._weights.append(weight)
        self._calls_weight += weight
        while len(self.calls) > self.max_calls or self._calls_weight > MAX_SESSION_WEIGHT:
            self.calls.popleft()
            self._calls_weight -= self._weights.popleft()
        return call

    def remember_tokens(self, tokens: Iterable[str], limit: int) -> list[str]:
        """Remember tokens not known yet (the oldest go past the bounds); those added."""
        added = []
        for token in tokens:
            if token in self.tokens or len(token) > MAX_TOKEN_WEIGHT:
                continue
            added.append(token)
            self.tokens.add(token)
            self._tokens_weight += len(token)
            while len(self.tokens) > limit or self._tokens_weight > MAX_TOKEN_WEIGHT:
                oldest = next(iter(self.tokens))
                self.tokens.discard(oldest)
                self._tokens_weight -= len(oldest)
        return added


class SessionMemory:
    """An LRU of :class:`SessionState` with a time-to-live."""

    def __init__(
        self,
        max_sessions: int = 10_000,
        ttl_seconds: float = 3600.0,
        max_calls: int = 100,
        max_tokens: int = 1_000,
    ) -> None:
        self.max_sessions = max_sessions
        self.ttl_seconds = ttl_seconds
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self._states: OrderedDict[str, SessionState] = OrderedDict()

    async def load(self, key: str) -> None:
        """Fetch ``key``'s state from the shared store; in process memory there is none."""

    def store(self, key: str, call: Mapping[str, Any] | None, tokens: list[str]) -> Awaitable[None] | None:
        """Write to the shared store the call :meth:`SessionState.record_call` kept (None: not to
        be kept) and the tokens :meth:`SessionState.remember_tokens` added; None: nothing to do."""
        return None

    @staticmethod
    def key(route: str, session_id: str, client_id: str) -> str:
        if session_id:
            return f"{route}\x00s\x00{session_id}"
        if client_id:
            return f"{route}\x00c\x00{client_id}"
        return f"{route}\x00r"

    def install(self, key: str, state: SessionState) -> None:
        """Make ``state`` the one :meth:`get` returns for ``key`` (freshly loaded from a store)."""
        self._states[key] = state
        self._states.move_to_end(key)
        self._evict(time.monotonic())

    def get(self, key: str) -> SessionState:
        now = time.monotonic()
        state = self._states.get(key)
        if state is None or now - state.seen > self.ttl_seconds:
            state = SessionState(deque(), self.max_calls)
            self._states[key] = state
            self._evict(now)
        else:
            self._states.move_to_end(key)
        state.seen = now
        return state

    def _evict(self, now: float) -> None:
        while len(self._states) > self.max_sessions:
            self._states.popitem(last=False)
        # Expired sessions sit at the old end; drop a few per insertion.
        for _ in range(8):
            oldest = next(iter(self._states.values()), None)
            if oldest is None or now - oldest.seen <= self.ttl_seconds:
                break
            self._states.popitem(last=False)

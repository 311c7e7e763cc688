"""Per-session memory: earlier calls and opaque tokens seen, bounded in size and time.

One store serves both the opaque-token check and the CEL variable ``session.calls`` (both in
docs/reference/policies.md). Beyond ``{tool, args, ok}`` each call keeps
its ``result`` (the tool's ``structuredContent``, when small), so a policy can
check a call against what an earlier one returned (a DataTable's columns).
Memory is keyed by route plus the session id, else the client, else the route
alone (stateless traffic from anonymous clients). It lives in process memory
only: bounded entries, bounded sessions, and idle sessions expire, so an agent
cannot grow it without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcpfence.policy.opaque import TokenMemory

# A remembered result may weigh this much (characters of strings plus one per value).
MAX_REMEMBERED_RESULT = 16_384


def _fits(value: Any, budget: int) -> bool:
    """Whether ``value`` weighs at most ``budget``; stops counting as soon as it does not."""
    pending = [value]
    while pending:
        item = pending.pop()
        budget -= len(item) + 1 if isinstance(item, str) else 1
        if budget < 0:
            return False
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def remembered(result: Any) -> Any:
    """What ``session.calls`` keeps of a structured result: all of it when small, else None."""
    return result if result is not None and _fits(result, MAX_REMEMBERED_RESULT) else None


@dataclass
class SessionState:
    """What one session has done so far."""

    calls: deque[Mapping[str, Any]]
    tokens: TokenMemory = field(default_factory=TokenMemory)
    seen: float = field(default_factory=time.monotonic)

    def record_call(self, tool: str, args: Mapping[str, Any], ok: bool, result: Any = None) -> None:
        """Remember a forwarded call; its structured result only when it is small."""
        self.calls.append({"tool": tool, "args": args, "ok": ok, "result": remembered(result)})

    def remember_tokens(self, tokens: Iterable[str], limit: int) -> None:
        for token in tokens:
            if token in self.tokens:
                continue
            self.tokens.add(token)
            if len(self.tokens) > limit:
                self.tokens.discard(next(iter(self.tokens)))


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

    @staticmethod
    def key(route: str, session_id: str, client_id: str) -> str:
        if session_id:
            return f"{route}\x00s\x00{session_id}"
        if client_id:
            return f"{route}\x00c\x00{client_id}"
        return f"{route}\x00r"

    def get(self, key: str) -> SessionState:
        now = time.monotonic()
        state = self._states.get(key)
        if state is None or now - state.seen > self.ttl_seconds:
            state = SessionState(deque(maxlen=self.max_calls))
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

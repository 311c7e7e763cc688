"""Token-bucket rate limits and the IETF ``RateLimit-*`` headers (docs/reference/access.md#rate-limits).

Each JSON-RPC request counts, every one in a batch; notifications and responses
do not. A batch is admitted whole or refused whole (one HTTP answer carries it).

Whose bucket a request draws from depends on what mcpfence has verified, never
on what the client merely claims: ``key: session`` uses the session id only once
mcpfence has seen it issued (by the upstream, or by its own session table);
otherwise, and for ``key: client``, the bucket is the client's: the API token's
name when the route requires one, else the peer address. Behind a load balancer
all peers share the balancer's address, so routes that count per client there
should require API tokens.

:class:`RateLimiter` keeps buckets in process memory; in cluster mode
mcpfence.cluster.ratelimit keeps them in Redis, both behind :class:`RateCounter`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

KeyKind = Literal["session", "client", "route"]
BucketKey = tuple[str, str, str | None]
"""(route, whose bucket: ``s:<session>``, ``c:<api token>``, ``a:<address>`` or ``route``, tool or None)."""

# A reset value this large is an epoch timestamp, not a delta (which would be 30+ years).
_EPOCH_THRESHOLD = 1_000_000_000
_EPOCH_MS_THRESHOLD = 100_000_000_000
# How long an issued session id stays known without use.
SESSION_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as far as mcpfence can tell."""

    session_id: str
    """The ``Mcp-Session-Id`` sent (``""``: none); trusted only once verified."""
    client_id: str
    """The API token's name (``""``: the route requires none)."""
    address: str
    """The peer's IP address."""
    session_verified: bool = False
    """The transport itself knows the session (hosted sessions); else it must have been issued."""

    @property
    def client_bucket(self) -> str:
        return f"c:{self.client_id}" if self.client_id else f"a:{self.address}"


@dataclass(frozen=True)
class RateLimit:
    """A route's ``rate_limit``: ``requests`` per ``per_seconds`` for each bucket ``key``."""

    requests: int
    per_seconds: float
    key: KeyKind = "session"
    per_tool: bool = False

    def __post_init__(self) -> None:
        if self.requests <= 0 or self.per_seconds <= 0:
            raise ValueError("rate_limit.requests and per_seconds must be positive")

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.requests / self.per_seconds

    def counts(
        self, route: str, caller: Caller, tools: Sequence[str | None], session_known: bool
    ) -> Counter[BucketKey]:
        """How many tokens each bucket gives for ``tools`` (one entry per request)."""
        if self.key == "route":
            who = "route"
        elif self.key == "session" and caller.session_id and session_known:
            who = f"s:{caller.session_id}"
        else:
            who = caller.client_bucket
        return Counter((route, who, tool if self.per_tool else None) for tool in tools)

    def decision(self, allowed: bool, tokens: float, deficit: float) -> RateDecision:
        """The verdict, given the fewest tokens left in any bucket and the largest shortfall."""
        return RateDecision(
            allowed=allowed,
            limit=self.requests,
            remaining=max(0, math.floor(tokens)),
            reset_seconds=math.ceil((self.requests - tokens) / self.rate),
            retry_after=0 if allowed else max(1, math.ceil(deficit / self.rate)),
        )


@dataclass(frozen=True)
class RateDecision:
    """One admission: the verdict and what the ``RateLimit-*`` headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Seconds until the bucket is full again."""
    retry_after: int
    """Seconds until the request would be allowed; 0 when allowed now."""


class RateCounter(Protocol):
    """Where one limit's buckets and the sessions it has seen issued live."""

    limit: RateLimit

    async def take(self, route: str, caller: Caller, tools: Sequence[str | None]) -> RateDecision:
        """Take one token per entry of ``tools``, all or none."""

    async def session_issued(self, route: str, session_id: str) -> None:
        """The upstream issued ``session_id``: ``key: session`` may trust it from now on."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A :class:`RateCounter` in process memory; :meth:`take` is O(requests) amortized.

    Buckets live in an LRU-ordered dict: a bucket idle long enough to be full
    again is the same as a fresh one, so it is dropped; and the dict never holds
    more than ``max_buckets`` entries (issued sessions likewise).
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[BucketKey, _Bucket] = OrderedDict()
        self._sessions: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, route: str, caller: Caller, tools: Sequence[str | None]) -> RateDecision:
        known = caller.session_verified or self._session_known(route, caller.session_id)
        return self.draw(self.limit.counts(route, caller, tools, known))

    def draw(self, counts: Mapping[BucketKey, int]) -> RateDecision:
        """Take ``counts`` tokens from their buckets if every one has enough."""
        now = self._clock()
        self._evict_idle(now)
        capacity = float(self.limit.requests)
        buckets = {}
        for key in counts:
            bucket = self._buckets.pop(key, None) or _Bucket(capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * self.limit.rate)
            bucket.updated = now
            buckets[key] = bucket
        deficit = max((counts[key] - bucket.tokens for key, bucket in buckets.items()), default=0.0)
        allowed = deficit <= 0
        for key, bucket in buckets.items():
            if allowed:
                bucket.tokens -= counts[key]
            self._buckets[key] = bucket
        while len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        tokens = min((bucket.tokens for bucket in buckets.values()), default=capacity)
        return self.limit.decision(allowed, tokens, deficit)

    async def session_issued(self, route: str, session_id: str) -> None:
        self._sessions[(route, session_id)] = self._clock()
        self._sessions.move_to_end((route, session_id))
        while len(self._sessions) > self._max_buckets:
            self._sessions.popitem(last=False)

    def _session_known(self, route: str, session_id: str) -> bool:
        seen = self._sessions.get((route, session_id)) if session_id else None
        if seen is None or self._clock() - seen > SESSION_TTL_SECONDS:
            return False
        self._sessions[(route, session_id)] = self._clock()
        self._sessions.move_to_end((route, session_id))
        return True

    def _evict_idle(self, now: float) -> None:
        # The front of the LRU order is the longest idle; stop at the first busy one.
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.updated < self.limit.per_seconds:
                return
            del self._buckets[key]


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    """``RateLimit-Limit/Remaining/Reset``, plus ``Retry-After`` on a refusal."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def normalize_upstream_headers(headers: Mapping[str, str], now: float | None = None) -> dict[str, str]:
    """An upstream's headers plus ``RateLimit-*`` derived from vendor ``X-RateLimit-*``.

    Originals are kept; fields the upstream already sends in IETF form win. A vendor
    reset may be a delta or an epoch time (seconds or milliseconds); ``Retry-After``
    (seconds or an HTTP date) stands in for a missing reset.
    """
    now = time.time() if now is None else now
    lowered = {name.lower(): value for name, value in headers.items()}
    derived: dict[str, str] = {}
    for field in ("limit", "remaining"):
        number = _number(lowered.get(f"x-ratelimit-{field}"))
        if number is not None:
            derived[f"RateLimit-{field.capitalize()}"] = str(max(0, math.floor(number)))
    reset = _reset_delta(lowered.get("x-ratelimit-reset"), now)
    if reset is None:
        reset = _retry_after_delta(lowered.get("retry-after"), now)
    if reset is not None:
        derived["RateLimit-Reset"] = str(reset)
    result = dict(headers)
    for name, value in derived.items():
        if name.lower() not in lowered:
            result[name] = value
    return result


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reset_delta(value: str | None, now: float) -> int | None:
    number = _number(value)
    if number is None:
        return None
    if number >= _EPOCH_MS_THRESHOLD:
        number = number / 1000 - now
    elif number >= _EPOCH_THRESHOLD:
        number -= now
    return max(0, math.ceil(number))


def _retry_after_delta(value: str | None, now: float) -> int | None:
    if value is None:
        return None
    number = _number(value)
    if number is not None:
        return max(0, math.ceil(number))
    try:
        return max(0, math.ceil(parsedate_to_datetime(value).timestamp() - now))
    except (TypeError, ValueError):
        return None

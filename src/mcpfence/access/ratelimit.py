"""Token-bucket rate limits and the IETF ``RateLimit-*`` headers (docs/reference/access.md#rate-limits).

One :class:`RateLimiter` serves one route's limit. Buckets live in an LRU-ordered
dict: a bucket idle long enough to be full again is the same as a fresh one, so it
is dropped; and the dict never holds more than ``max_buckets`` entries.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

KeyKind = Literal["session", "client", "route"]
BucketKey = tuple[str, KeyKind, str, str | None]
"""(route, key kind, key value, tool or None)."""

# A reset value this large is an epoch timestamp, not a delta (which would be 30+ years).
_EPOCH_THRESHOLD = 1_000_000_000
_EPOCH_MS_THRESHOLD = 100_000_000_000


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

    def bucket_key(self, route: str, *, session_id: str, client_id: str, tool: str | None) -> BucketKey:
        """The bucket one request draws from, per this limit's ``key`` and ``per_tool``."""
        value = session_id if self.key == "session" else client_id if self.key == "client" else ""
        return (route, self.key, value, tool if self.per_tool else None)


@dataclass(frozen=True)
class RateDecision:
    """One :meth:`RateLimiter.check`: the verdict and what the ``RateLimit-*`` headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Seconds until the bucket is full again."""
    retry_after: int
    """Seconds until one request is allowed again; 0 when allowed now."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets for one :class:`RateLimit`; :meth:`check` is O(1) amortized."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_buckets: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._rate = limit.requests / limit.per_seconds
        self._max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[BucketKey, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: BucketKey) -> RateDecision:
        """Take one token from ``key``'s bucket if there is one."""
        now = self._clock()
        self._evict_idle(now)
        capacity = float(self.limit.requests)
        bucket = self._buckets.pop(key, None) or _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_buckets:
            self._buckets.popitem(last=False)
        return RateDecision(
            allowed=allowed,
            limit=self.limit.requests,
            remaining=math.floor(bucket.tokens),
            reset_seconds=math.ceil((capacity - bucket.tokens) / self._rate),
            retry_after=0 if allowed else max(1, math.ceil((1.0 - bucket.tokens) / self._rate)),
        )

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

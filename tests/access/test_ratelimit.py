"""Token buckets, the IETF rate-limit headers, and upstream header normalization."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from mcpfence.access.ratelimit import (
    BucketKey,
    RateLimit,
    RateLimiter,
    normalize_upstream_headers,
    rate_limit_headers,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(limit: RateLimit, clock: FakeClock, max_buckets: int = 100) -> RateLimiter:
    return RateLimiter(limit, max_buckets=max_buckets, clock=clock)


def session_key(limit: RateLimit, session: str = "s", tool: str | None = None) -> BucketKey:
    return limit.bucket_key("crm", session_id=session, client_id="", tool=tool)


def test_burst_beyond_the_limit_is_refused() -> None:
    limit = RateLimit(requests=3, per_seconds=60)
    buckets = limiter(limit, FakeClock())
    decisions = [buckets.check(session_key(limit)) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]


def test_bucket_refills_at_the_configured_rate() -> None:
    clock = FakeClock()
    limit = RateLimit(requests=2, per_seconds=10)
    buckets = limiter(limit, clock)
    k = session_key(limit)
    buckets.check(k)
    buckets.check(k)
    assert not buckets.check(k).allowed
    clock.now += 5
    assert buckets.check(k).allowed
    assert not buckets.check(k).allowed


def test_refusal_reports_retry_after_and_reset() -> None:
    limit = RateLimit(requests=2, per_seconds=10)
    buckets = limiter(limit, FakeClock())
    k = session_key(limit)
    buckets.check(k)
    buckets.check(k)
    refused = buckets.check(k)
    assert rate_limit_headers(refused) == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "10",
        "Retry-After": "5",
    }


def test_allowed_request_headers_omit_retry_after() -> None:
    limit = RateLimit(requests=5, per_seconds=60)
    decision = limiter(limit, FakeClock()).check(session_key(limit))
    assert rate_limit_headers(decision) == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "12",
    }


def test_sessions_have_separate_buckets() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="session")
    buckets = limiter(limit, FakeClock())
    assert buckets.check(session_key(limit, "a")).allowed
    assert buckets.check(session_key(limit, "b")).allowed


def test_route_key_shares_one_bucket_across_sessions() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="route")
    buckets = limiter(limit, FakeClock())
    assert buckets.check(session_key(limit, "a")).allowed
    assert not buckets.check(session_key(limit, "b")).allowed


def test_client_key_shares_a_bucket_across_one_clients_sessions() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="client")
    assert limit.bucket_key("crm", session_id="a", client_id="acme", tool=None) == (
        limit.bucket_key("crm", session_id="b", client_id="acme", tool=None)
    )


def test_per_tool_limits_count_each_tool_apart() -> None:
    limit = RateLimit(requests=1, per_seconds=60, per_tool=True)
    buckets = limiter(limit, FakeClock())
    assert buckets.check(session_key(limit, "s", "a")).allowed
    assert buckets.check(session_key(limit, "s", "b")).allowed
    assert not buckets.check(session_key(limit, "s", "a")).allowed


def test_idle_buckets_are_evicted() -> None:
    clock = FakeClock()
    limit = RateLimit(requests=1, per_seconds=10)
    buckets = limiter(limit, clock)
    for session in ("a", "b", "c"):
        buckets.check(session_key(limit, session))
    clock.now += 10
    buckets.check(session_key(limit, "d"))
    assert len(buckets) == 1


def test_bucket_count_never_exceeds_the_bound() -> None:
    limit = RateLimit(requests=1, per_seconds=10)
    buckets = limiter(limit, FakeClock(), max_buckets=50)
    for i in range(200):
        buckets.check(session_key(limit, str(i)))
    assert len(buckets) == 50


def test_non_positive_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        RateLimit(requests=0, per_seconds=1)


NOW = 1_700_000_000.0


def test_vendor_headers_with_delta_reset_are_normalized_and_kept() -> None:
    upstream = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    assert normalize_upstream_headers(upstream, now=NOW) == {
        **upstream,
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "30",
    }


def test_epoch_seconds_reset_becomes_a_delta() -> None:
    headers = normalize_upstream_headers({"x-ratelimit-reset": str(int(NOW) + 42)}, now=NOW)
    assert headers["RateLimit-Reset"] == "42"


def test_epoch_milliseconds_reset_becomes_a_delta() -> None:
    headers = normalize_upstream_headers({"X-RateLimit-Reset": str(int(NOW * 1000) + 7000)}, now=NOW)
    assert headers["RateLimit-Reset"] == "7"


def test_reset_in_the_past_is_zero() -> None:
    headers = normalize_upstream_headers({"X-RateLimit-Reset": str(int(NOW) - 5)}, now=NOW)
    assert headers["RateLimit-Reset"] == "0"


def test_retry_after_seconds_stands_in_for_a_missing_reset() -> None:
    headers = normalize_upstream_headers({"Retry-After": "12"}, now=NOW)
    assert headers == {"Retry-After": "12", "RateLimit-Reset": "12"}


def test_retry_after_http_date_stands_in_for_a_missing_reset() -> None:
    headers = normalize_upstream_headers({"Retry-After": formatdate(NOW + 60, usegmt=True)}, now=NOW)
    assert headers["RateLimit-Reset"] == "60"


def test_upstream_ietf_headers_win_over_vendor_ones() -> None:
    upstream = {"RateLimit-Limit": "10", "X-RateLimit-Limit": "99"}
    assert normalize_upstream_headers(upstream, now=NOW) == upstream


def test_headers_without_rate_limit_information_pass_unchanged() -> None:
    assert normalize_upstream_headers({"Content-Type": "application/json"}, now=NOW) == {
        "Content-Type": "application/json"
    }

"""Token buckets, the IETF rate-limit headers, and upstream header normalization."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from mcpfence.access.ratelimit import (
    Caller,
    RateDecision,
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


def check(buckets: RateLimiter, session: str = "s", tool: str | None = None, count: int = 1) -> RateDecision:
    """One POST of ``count`` requests (to ``tool``) in a verified session."""
    caller = Caller(session, "", "127.0.0.1", session_verified=True)
    return buckets.draw(buckets.limit.counts("crm", caller, [tool] * count, session_known=True))


def test_burst_beyond_the_limit_is_refused() -> None:
    limit = RateLimit(requests=3, per_seconds=60)
    buckets = limiter(limit, FakeClock())
    decisions = [check(buckets) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]


def test_bucket_refills_at_the_configured_rate() -> None:
    clock = FakeClock()
    limit = RateLimit(requests=2, per_seconds=10)
    buckets = limiter(limit, clock)
    check(buckets)
    check(buckets)
    assert not check(buckets).allowed
    clock.now += 5
    assert check(buckets).allowed
    assert not check(buckets).allowed


def test_refusal_reports_retry_after_and_reset() -> None:
    limit = RateLimit(requests=2, per_seconds=10)
    buckets = limiter(limit, FakeClock())
    check(buckets)
    check(buckets)
    refused = check(buckets)
    assert rate_limit_headers(refused) == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "10",
        "Retry-After": "5",
    }


def test_allowed_request_headers_omit_retry_after() -> None:
    limit = RateLimit(requests=5, per_seconds=60)
    decision = check(limiter(limit, FakeClock()))
    assert rate_limit_headers(decision) == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "12",
    }


def test_sessions_have_separate_buckets() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="session")
    buckets = limiter(limit, FakeClock())
    assert check(buckets, "a").allowed
    assert check(buckets, "b").allowed


def test_route_key_shares_one_bucket_across_sessions() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="route")
    buckets = limiter(limit, FakeClock())
    assert check(buckets, "a").allowed
    assert not check(buckets, "b").allowed


def test_client_key_shares_a_bucket_across_one_clients_sessions() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="client")
    first, second = Caller("a", "acme", "10.0.0.1", True), Caller("b", "acme", "10.0.0.2", True)
    assert limit.counts("crm", first, [None], True) == limit.counts("crm", second, [None], True)


def test_without_an_api_token_clients_are_told_apart_by_address() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="client")
    first, second = Caller("", "", "10.0.0.1"), Caller("", "", "10.0.0.2")
    assert limit.counts("crm", first, [None], False) != limit.counts("crm", second, [None], False)


@pytest.mark.anyio
async def test_a_session_id_counts_as_a_session_only_once_seen_issued() -> None:
    limit = RateLimit(requests=1, per_seconds=60, key="session")
    buckets = limiter(limit, FakeClock())
    invented = [Caller(f"made-up-{i}", "", "10.0.0.1") for i in range(2)]
    assert [(await buckets.take("crm", c, [None])).allowed for c in invented] == [True, False]
    await buckets.session_issued("crm", "real")
    assert (await buckets.take("crm", Caller("real", "", "10.0.0.1"), [None])).allowed


def test_a_batch_is_admitted_whole_or_refused_whole() -> None:
    buckets = limiter(RateLimit(requests=3, per_seconds=60), FakeClock())
    assert not check(buckets, count=4).allowed
    assert check(buckets, count=3).allowed
    assert not check(buckets).allowed


def test_per_tool_limits_count_each_tool_apart() -> None:
    limit = RateLimit(requests=1, per_seconds=60, per_tool=True)
    buckets = limiter(limit, FakeClock())
    assert check(buckets, "s", "a").allowed
    assert check(buckets, "s", "b").allowed
    assert not check(buckets, "s", "a").allowed


def test_idle_buckets_are_evicted() -> None:
    clock = FakeClock()
    limit = RateLimit(requests=1, per_seconds=10)
    buckets = limiter(limit, clock)
    for session in ("a", "b", "c"):
        check(buckets, session)
    clock.now += 10
    check(buckets, "d")
    assert len(buckets) == 1


def test_bucket_count_never_exceeds_the_bound() -> None:
    limit = RateLimit(requests=1, per_seconds=10)
    buckets = limiter(limit, FakeClock(), max_buckets=50)
    for i in range(200):
        check(buckets, str(i))
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

"""Session memory is bounded by weight (bytes), not by entries: policy evaluation
reads ``session.calls`` on every call, so its cost must not grow with results."""

from __future__ import annotations

from typing import Any

from mcpfence.session import MAX_SESSION_WEIGHT, MAX_TOKEN_WEIGHT, SessionMemory


def weight(value: Any) -> int:
    """Characters of strings plus one per value, as the memory counts them."""
    if isinstance(value, str):
        return len(value) + 1
    if isinstance(value, dict):
        return 1 + sum(weight(k) + weight(v) for k, v in value.items())
    if isinstance(value, list):
        return 1 + sum(weight(item) for item in value)
    return 1


def test_remembered_calls_never_weigh_more_than_the_session_budget() -> None:
    state = SessionMemory().get("route\x00s\x00a")
    result = {"rows": ["x" * 1000] * 15}
    for index in range(100):
        state.record_call("export", {"note": "y" * 1000, "n": index}, True, result)
    assert sum(weight(dict(call)) for call in state.calls) <= MAX_SESSION_WEIGHT
    assert state.calls[-1]["args"]["n"] == 99  # the newest calls are the ones kept
    assert state.calls[-1]["result"] == result


def test_many_small_calls_are_still_kept_up_to_the_entry_bound() -> None:
    memory = SessionMemory(max_calls=100)
    state = memory.get("route\x00s\x00a")
    for index in range(150):
        state.record_call("ping", {"n": index}, True)
    assert len(state.calls) == 100


def test_remembered_tokens_never_weigh_more_than_their_budget() -> None:
    memory = SessionMemory()
    state = memory.get("route\x00s\x00a")
    tokens = [f"{index:06d}" + "t" * 4000 for index in range(100)]
    state.remember_tokens(tokens, memory.max_tokens)
    kept = list(state.tokens)
    assert sum(len(token) for token in kept) <= MAX_TOKEN_WEIGHT
    assert kept[-1] == tokens[-1]

"""Waiting for a condition: poll it to a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio

T = TypeVar("T")
POLL_SECONDS = 0.02


def _settled(value: T, deadline: float) -> bool:
    """Whether polling stops: the value holds, or time is up (then the test fails)."""
    if value or time.monotonic() > deadline:
        assert value, f"never became true: {value!r}"
        return True
    return False


def eventually(probe: Callable[[], T], timeout: float = 10.0) -> T:
    """Poll ``probe`` until it returns something truthy; its last value otherwise fails."""
    deadline = time.monotonic() + timeout
    while not _settled(value := probe(), deadline):
        time.sleep(POLL_SECONDS)
    return value


async def until(probe: Callable[[], T], timeout: float = 10.0) -> T:
    """:func:`eventually` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not _settled(value := probe(), deadline):
        await anyio.sleep(POLL_SECONDS)
    return value

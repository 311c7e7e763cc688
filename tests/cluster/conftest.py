"""Fixtures for cluster mode: a real Redis per test, and polling instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from tests.access.conftest import upstream_url
from tests.cluster.redis_server import RedisServer, redis_server

T = TypeVar("T")
POLICIES = Path(__file__).parent / "policies"


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    with redis_server(directory) as server:
        yield server


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for a module whose replicas are started once (they are slow to start)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def shared_redis(module_redis: RedisServer) -> Iterator[RedisServer]:
    """The module's Redis, its replicas' too; a test that stops it gets it back running afterwards."""
    yield module_redis
    if module_redis.process is None:
        module_redis.start()


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


__all__ = ["POLICIES", "eventually", "module_redis", "redis", "shared_redis", "until", "upstream_url"]

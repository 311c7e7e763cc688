"""Fixtures for cluster mode: a real Redis per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admin.conftest import upstream_url
from tests.cluster.redis_server import RedisServer, redis_server

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


__all__ = ["POLICIES", "module_redis", "redis", "shared_redis", "upstream_url"]

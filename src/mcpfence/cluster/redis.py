"""The one Redis client a process uses, and the reachability check ``/readyz`` reports.

redis-py's asyncio client (with hiredis parsing) reconnects on its own after
Redis comes back; short socket timeouts make a dead Redis an error within
seconds rather than a hang, so decisions that need it fail closed promptly.

A pooled connection Redis closed while it sat idle (a restart, a failover, a
``timeout`` setting, ``CLIENT KILL``) fails on its next command before Redis reads
it; that command is sent once more on a fresh connection, so the first call after
a restart is not refused. Timeouts are not retried: a command that timed out may
have run.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

KEY_PREFIX = "mcpfence:"
SOCKET_TIMEOUT_SECONDS = 2.0


def connect(url: str) -> aioredis.Redis:
    """A pooled client for ``url``; connections open lazily, on first use."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


async def reachable(client: aioredis.Redis) -> bool:
    """Whether Redis answers a PING now."""
    try:
        return bool(await asyncio.wait_for(client.ping(), SOCKET_TIMEOUT_SECONDS))
    except (RedisError, OSError, TimeoutError):
        return False


__all__ = ["KEY_PREFIX", "RedisError", "connect", "reachable"]

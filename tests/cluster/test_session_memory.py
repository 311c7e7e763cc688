"""Session memory in Redis: what a replica loads is what others appended, within bounds."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from mcpfence.cluster.redis import connect
from mcpfence.cluster.session import RedisSessionMemory
from mcpfence.session import MAX_SESSION_WEIGHT, MAX_TOKEN_WEIGHT
from tests.cluster.redis_server import RedisServer

pytestmark = pytest.mark.anyio
KEY = "route\x00s\x00abc"


async def test_a_call_stored_by_one_replica_is_loaded_by_another(redis: RedisServer) -> None:
    client: aioredis.Redis = connect(redis.url)
    first, second = RedisSessionMemory(client), RedisSessionMemory(client)
    state = first.get(KEY)
    call = state.record_call("lookup", {"id": "7"}, True, {"name": "Ada"})
    tokens = state.remember_tokens(["tok_abcdef123456"], first.max_tokens)
    stored = first.store(KEY, call, tokens)
    await stored
    await second.load(KEY)
    loaded = second.get(KEY)
    expected = {"tool": "lookup", "args": {"id": "7"}, "ok": True, "result": {"name": "Ada"}}
    assert list(loaded.calls) == [expected]
    assert "tok_abcdef123456" in loaded.tokens
    await client.aclose()


async def test_redis_keeps_a_session_within_its_byte_bounds(redis: RedisServer) -> None:
    client: aioredis.Redis = connect(redis.url)
    memory = RedisSessionMemory(client)
    state = memory.get(KEY)
    for index in range(60):
        call = state.record_call("export", {"n": index, "note": "x" * 4000}, True)
        tokens = state.remember_tokens([f"{index:04d}" + "t" * 3000], memory.max_tokens)
        await memory.store(KEY, call, tokens)
    calls_key, tokens_key, _ = memory._keys(KEY)
    calls = await client.lrange(calls_key, 0, -1)
    tokens = await client.lrange(tokens_key, 0, -1)
    assert sum(len(c.encode()) for c in calls) <= MAX_SESSION_WEIGHT
    assert sum(len(t.encode()) for t in tokens) <= MAX_TOKEN_WEIGHT
    assert '"n":59' in calls[-1]
    assert 0 < await client.ttl(calls_key) <= memory.ttl_seconds
    await client.aclose()


async def test_reading_a_session_renews_its_idle_expiry(redis: RedisServer) -> None:
    client: aioredis.Redis = connect(redis.url)
    memory = RedisSessionMemory(client)
    state = memory.get(KEY)
    await memory.store(KEY, state.record_call("lookup", {"id": "7"}, True), [])
    calls_key, _, _ = memory._keys(KEY)
    await client.expire(calls_key, 5)
    await RedisSessionMemory(client).load(KEY)
    assert await client.ttl(calls_key) > 5
    await client.aclose()


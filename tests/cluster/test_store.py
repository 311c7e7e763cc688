"""Token routes and API tokens in Redis: every replica's index follows every write."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import anyio
import pytest
import redis.asyncio as aioredis

from mcpfence.access.store import ApiToken, StoreConflict, utcnow
from mcpfence.access.tokens import hash_token
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.redis import connect
from mcpfence.cluster.store import RedisStore
from tests.access.test_store import T0, Clock, make_route
from tests.cluster.redis_server import RedisServer
from tests.polling import until

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def replica(
    url: str, removed: list[str] | None = None, clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[RedisStore]:
    """A store as one replica holds it: loaded, and watching for other replicas' writes."""
    client: aioredis.Redis = connect(url)
    store = RedisStore(client, clock)
    await store.load()
    gone = removed if removed is not None else []

    async def on_removed(route_id: str) -> None:
        gone.append(route_id)

    async with anyio.create_task_group() as group:
        group.start_soon(store.watch, on_removed)
        try:
            yield store
        finally:
            group.cancel_scope.cancel()
    await client.aclose()


async def test_a_route_created_on_one_replica_is_served_by_another(redis: RedisServer) -> None:
    async with replica(redis.url) as a, replica(redis.url) as b:
        await a.add_route(make_route())
        assert a.route_by_token_hash(hash_token("token-acme")) == make_route()
        await until(lambda: b.route_by_token_hash(hash_token("token-acme")) == make_route())


async def test_a_route_revoked_on_one_replica_stops_and_is_reported_on_another(redis: RedisServer) -> None:
    removed: list[str] = []
    async with replica(redis.url) as a, replica(redis.url, removed) as b:
        await a.add_route(make_route())
        await until(lambda: b.route("id-acme") is not None)
        assert await a.delete_route("id-acme")
        await until(lambda: b.route_by_token_hash(hash_token("token-acme")) is None)
        assert removed == ["id-acme"]


async def test_a_changed_route_is_seen_changed_everywhere(redis: RedisServer) -> None:
    async with replica(redis.url) as a, replica(redis.url) as b:
        await a.add_route(make_route())
        changed = make_route().__class__(**{**make_route().__dict__, "methods": ("write",)})
        assert await b.update_route(changed)
        await until(lambda: a.route("id-acme") == changed)


async def test_two_replicas_racing_for_one_name_create_exactly_one_route(redis: RedisServer) -> None:
    async with replica(redis.url) as a, replica(redis.url) as b:
        first = make_route("acme")
        second = first.__class__(**{**first.__dict__, "id": "id-other", "token_sha256": hash_token("x")})
        outcomes: list[str] = []

        async def create(store: RedisStore, route: object) -> None:
            try:
                await store.add_route(route)  # type: ignore[arg-type]
                outcomes.append("created")
            except StoreConflict:
                outcomes.append("conflict")

        async with anyio.create_task_group() as group:
            group.start_soon(create, a, first)
            group.start_soon(create, b, second)
        assert sorted(outcomes) == ["conflict", "created"]
        await until(lambda: len(a.routes()) == len(b.routes()) == 1)


async def test_renaming_onto_a_taken_name_is_a_conflict(redis: RedisServer) -> None:
    async with replica(redis.url) as a:
        await a.add_route(make_route("acme"))
        await a.add_route(make_route("globex"))
        renamed = make_route("globex").__class__(**{**make_route("globex").__dict__, "name": "acme"})
        with pytest.raises(StoreConflict):
            await a.update_route(renamed)


async def test_api_tokens_are_shared_and_names_unique(redis: RedisServer) -> None:
    async with replica(redis.url) as a, replica(redis.url) as b:
        await a.add_api_token(ApiToken("agent", hash_token("secret"), T0))
        await until(lambda: [t.name for t in b.api_tokens()] == ["agent"])
        with pytest.raises(StoreConflict):
            await b.add_api_token(ApiToken("agent", hash_token("other"), T0))
        assert await b.delete_api_token("agent")
        await until(lambda: a.api_tokens() == [])


async def test_expired_routes_are_purged_once_and_reported_everywhere(redis: RedisServer) -> None:
    removed: list[str] = []
    clock = Clock()
    async with replica(redis.url, clock=clock) as a, replica(redis.url, removed, clock) as b:
        await a.add_route(make_route(expires_at=T0 + timedelta(seconds=1)))
        await until(lambda: b.route("id-acme") is not None)
        clock.now = T0 + timedelta(seconds=2)
        assert b.route("id-acme") is None
        purged = await a.purge_expired()
        assert purged == ["id-acme"]
        assert await b.purge_expired() == []
        await until(lambda: removed == ["id-acme"])


async def test_routes_survive_a_redis_restart(redis: RedisServer) -> None:
    async with replica(redis.url) as a:
        await a.add_route(make_route())
    redis.stop()
    redis.start()
    async with replica(redis.url) as b:
        assert b.route("id-acme") == make_route()


async def test_writes_fail_closed_while_redis_is_down_and_work_again_after(redis: RedisServer) -> None:
    async with replica(redis.url) as a:
        await a.add_route(make_route("acme"))
        redis.stop()
        with pytest.raises(SharedStateUnavailable):
            await a.add_route(make_route("globex"))
        assert a.route("id-acme") == make_route("acme")  # what is stored keeps answering
        redis.start()
        await a.add_route(make_route("globex"))
        assert {r.name for r in a.routes()} == {"acme", "globex"}



"""Token routes and API tokens in Redis, shared by every replica (a :class:`Store`).

Reads come from the in-memory index, as with SQLite: the hot path makes no round
trip. Each write is one Lua script that checks uniqueness, writes, and publishes
on a channel; every replica's :meth:`RedisStore.watch` reloads its index when told,
so a create, change or revoke is seen everywhere within milliseconds. Pub/sub
delivers at most once, so ``watch`` also reloads on (re)subscribing and every
``RESYNC_SECONDS``. While Redis is down nothing can be written, so the index a
replica holds is still exactly what is stored; writes fail with
:class:`SharedStateUnavailable` and the admin API answers 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mcpfence.access.store import (
    ApiToken,
    IndexedStore,
    RouteRemoved,
    StoreConflict,
    TokenRoute,
    utcnow,
)
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.redis import KEY_PREFIX

log = logging.getLogger("mcpfence")
T = TypeVar("T")

RESYNC_SECONDS = 5.0
RETRY_SECONDS = 0.25

# The pieces the route scripts share. KEYS: routes by id, ids by name, ids by token hash,
# the change channel; ARGV: id, name, token hash, record.
_UNINDEX_OLD = """
local was = cjson.decode(old)
redis.call('HDEL', KEYS[2], was['name'])
redis.call('HDEL', KEYS[3], was['token_sha256'])
"""
_WRITE_AND_ANNOUNCE = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1
"""

_ADD_ROUTE = (
    """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1
   or redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then
  return 0
end
"""
    + _WRITE_AND_ANNOUNCE
)

_UPDATE_ROUTE = (
    """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if owner and owner ~= ARGV[1] then return -1 end
"""
    + _UNINDEX_OLD
    + _WRITE_AND_ANNOUNCE
)

_DELETE_ROUTE = (
    """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
"""
    + _UNINDEX_OLD
    + """
redis.call('PUBLISH', KEYS[4], ARGV[1])
return 1
"""
)

_ADD_TOKEN = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1
"""

_DELETE_TOKEN = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1
"""


def route_record(route: TokenRoute) -> str:
    """A route as stored in Redis: JSON, times in ISO 8601."""
    return json.dumps(
        {
            "id": route.id,
            "name": route.name,
            "token_sha256": route.token_sha256,
            "upstream": route.upstream,
            "methods": list(route.methods),
            "tags": list(route.tags),
            "expires_at": route.expires_at.isoformat() if route.expires_at else None,
            "require_api_token_auth": route.require_api_token_auth,
            "created_at": route.created_at.isoformat(),
        }
    )


def route_from_record(record: str) -> TokenRoute:
    data: dict[str, Any] = json.loads(record)
    expires = data["expires_at"]
    return TokenRoute(
        id=data["id"],
        name=data["name"],
        token_sha256=data["token_sha256"],
        upstream=data["upstream"],
        methods=tuple(data["methods"]),
        tags=tuple(data["tags"]),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        require_api_token_auth=bool(data["require_api_token_auth"]),
        created_at=datetime.fromisoformat(data["created_at"]),
    )


def _token_record(token: ApiToken) -> str:
    return json.dumps({"name": token.name, "sha256": token.token_sha256, "at": token.created_at.isoformat()})


def _token_from_record(record: str) -> ApiToken:
    data = json.loads(record)
    return ApiToken(data["name"], data["sha256"], datetime.fromisoformat(data["at"]))


async def shared(operation: Awaitable[T]) -> T:
    """Await a Redis operation; a Redis failure becomes :class:`SharedStateUnavailable`."""
    try:
        return await operation
    except (RedisError, OSError) as exc:
        raise SharedStateUnavailable(f"shared state (Redis) unreachable: {exc}") from None


class RedisStore(IndexedStore):
    """A :class:`Store` in Redis hashes; see the module docstring."""

    def __init__(
        self, client: aioredis.Redis, clock: Callable[[], datetime] = utcnow, prefix: str = KEY_PREFIX
    ) -> None:
        super().__init__(clock)
        self._redis = client
        self._routes_key = f"{prefix}routes"
        self._names_key = f"{prefix}route-names"
        self._hashes_key = f"{prefix}route-hashes"
        self._tokens_key = f"{prefix}api-tokens"
        self._channel = f"{prefix}changes"
        self._route_keys = [self._routes_key, self._names_key, self._hashes_key, self._channel]
        self._add_route = client.register_script(_ADD_ROUTE)
        self._update_route = client.register_script(_UPDATE_ROUTE)
        self._delete_route = client.register_script(_DELETE_ROUTE)
        self._add_token = client.register_script(_ADD_TOKEN)
        self._delete_token = client.register_script(_DELETE_TOKEN)
        self._on_removed: RouteRemoved | None = None

    async def load(self) -> None:
        """Replace the index with what Redis holds; report routes that disappeared."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._routes_key)
            pipe.hgetall(self._tokens_key)
            routes, tokens = await shared(pipe.execute())
        gone = self._index(
            [route_from_record(r) for r in routes.values()], [_token_from_record(t) for t in tokens.values()]
        )
        if self._on_removed is not None:
            for route_id in gone:
                await self._on_removed(route_id)

    async def watch(self, on_removed: RouteRemoved) -> None:
        self._on_removed = on_removed
        while True:
            try:
                await self._follow()
            except (SharedStateUnavailable, RedisError, OSError) as exc:
                log.warning("shared store: %s; retrying", exc)
                await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(self._channel)
            while True:  # subscribed first, then loaded: no change falls in between
                await self.load()
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=RESYNC_SECONDS)
                # Drain a burst of notifications: one reload covers them all.
                while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0):
                    pass

    async def _run(self, script: Any, keys: list[str], *args: str) -> int:
        result = int(await shared(script(keys=keys, args=list(args))))
        await self.load()  # this replica sees its own write at once
        return result

    async def add_route(self, route: TokenRoute) -> None:
        args = (route.id, route.name, route.token_sha256, route_record(route))
        if not await self._run(self._add_route, self._route_keys, *args):
            raise StoreConflict(f"a route named {route.name!r} (or with that id or token) exists")

    async def update_route(self, route: TokenRoute) -> bool:
        args = (route.id, route.name, route.token_sha256, route_record(route))
        result = await self._run(self._update_route, self._route_keys, *args)
        if result < 0:
            raise StoreConflict(f"a route named {route.name!r} exists")
        return result == 1

    async def delete_route(self, route_id: str) -> bool:
        return await self._run(self._delete_route, self._route_keys, route_id) == 1

    async def purge_expired(self) -> list[str]:
        return [route_id for route_id in self._expired_ids() if await self.delete_route(route_id)]

    async def add_api_token(self, token: ApiToken) -> None:
        keys = [self._tokens_key, self._channel]
        if not await self._run(self._add_token, keys, token.name, _token_record(token)):
            raise StoreConflict(f"an API token named {token.name!r} exists")

    async def delete_api_token(self, name: str) -> bool:
        return await self._run(self._delete_token, [self._tokens_key, self._channel], name) == 1

    def close(self) -> None:
        """The client is the proxy's; it closes it."""

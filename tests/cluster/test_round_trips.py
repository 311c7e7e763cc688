"""Redis round trips per call, counted by Redis itself (MONITOR), for each shared feature."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import redis.asyncio as aioredis

from tests.clients import MCP_HEADERS, open_raw_session, request, response_message, session_headers
from tests.cluster.conftest import POLICIES
from tests.cluster.redis_server import RedisServer
from tests.cluster.topology import Replica, replicas, route_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # see docs/how-to/test.md

GENEROUS = {"requests": 1000, "per_seconds": 600, "key": "session"}
# What the replicas ask Redis on their own, whatever the traffic: redis-py's health checks
# (PING) and connection set-up (HELLO, CLIENT SETINFO), each replica's route-change
# subscription and its reload of token routes and API tokens every few seconds (MULTI,
# HGETALL, EXEC).
BACKGROUND = frozenset({"PING", "HELLO", "CLIENT", "SUBSCRIBE", "MULTI", "HGETALL", "EXEC"})
END = "round-trips-counted"
TOKEN = "jr_abcdefgh01"
WARM_UP = "jr_warmup0001"


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, module_redis: RedisServer, upstream_url: str
) -> Iterator[list[Replica]]:
    route = partial(route_config, upstream_url=upstream_url)
    routes = [
        route("plain"),
        route("limited", rate_limit=GENEROUS),
        route("tokens"),
        route("both", rate_limit={"requests": 6, "per_seconds": 600, "key": "session"}),
        route("history"),
    ]
    directory = tmp_path_factory.mktemp("round-trips")
    with replicas(2, directory, module_redis.url, routes, policies=[str(POLICIES)]) as running:
        yield running


async def commands_during(redis: RedisServer, action: Callable[[], Awaitable[object]]) -> list[str]:
    """The commands clients sent Redis while ``action`` ran, as its MONITOR saw them, without
    the background ones and those scripts ran: one per round trip, as long as nothing on the
    hot path pipelines several (it does not; if it did, this would count more, never fewer)."""
    client = aioredis.Redis.from_url(redis.url, decode_responses=True)
    await client.echo("connected")  # the connection that ends the count is open before it starts
    seen: list[str] = []
    async with client.monitor() as monitor:

        async def record() -> None:
            async for command in monitor.listen():
                if command["command"] == f"ECHO {END}":
                    return
                if command["client_type"] != "lua":
                    seen.append(command["command"].split(" ", 1)[0].upper())

        async with anyio.create_task_group() as group:
            group.start_soon(record)
            await action()
            await client.echo(END)  # everything the action caused was run before this
    await client.aclose()
    return [name for name in seen if name not in BACKGROUND]


class Client:
    """One MCP session on a route, its requests sent round robin over the replicas."""

    def __init__(self, http: httpx.AsyncClient, pair: list[Replica], route: str, session_id: str) -> None:
        self.http = http
        self.pair = pair
        self.path = f"/{route}/mcp"
        self.headers = session_headers(session_id)
        self.sent = 0

    async def call(self, tool: str, journey: str = "") -> httpx.Response:
        arguments = {"journey_id": journey} if journey else {}
        message = request("tools/call", {"name": tool, "arguments": arguments}, self.sent)
        url = self.pair[self.sent % len(self.pair)].url(self.path)
        self.sent += 1
        return await self.http.post(url, json=message, headers=self.headers)


async def opened(http: httpx.AsyncClient, pair: list[Replica], route: str) -> Client:
    """A session on ``route`` whose first call is made: connections are open and Redis has
    the scripts (a token to keep, so the write's too), which it loads once per start."""
    client = Client(http, pair, route, await open_raw_session(http, pair[0].url(f"/{route}/mcp")))
    result(await client.call("lookup_journey", WARM_UP))
    return client


def result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response_message(response)["result"]
    return answer


async def lookups(client: Client, *journeys: str) -> None:
    """``lookup_journey`` of each of ``journeys`` in turn, each answered."""
    for journey in journeys:
        result(await client.call("lookup_journey", journey))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=30) as client:
        yield client


async def test_a_route_using_no_shared_state_sends_redis_nothing(
    pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "plain")
    assert await commands_during(shared_redis, lambda: lookups(client, "j1", "j2", "j3", "j4")) == []


@pytest.mark.parametrize("route", ["limited", "tokens"], ids=["rate-limit", "session-memory"])
async def test_a_call_costs_one_round_trip_for_one_feature_with_nothing_new_to_keep(
    route: str, pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, route)
    commands = await commands_during(shared_redis, lambda: lookups(client, "j1", "j2", "j3", "j4"))
    assert commands == ["EVALSHA"] * 4


async def test_a_token_seen_in_a_result_costs_one_write_once(
    pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "tokens")
    # Read, write the token; read: the token is known by now, nothing to write.
    assert await commands_during(shared_redis, lambda: lookups(client, TOKEN, TOKEN)) == ["EVALSHA"] * 3


async def test_a_token_written_on_one_replica_is_checked_on_the_other(
    pair: list[Replica], http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "tokens")
    await lookups(client, TOKEN)  # on replica 1
    denied = result(await client.call("send_journey", TOKEN.upper()))  # on replica 0
    assert denied.get("isError") is True
    assert "journeys-verbatim" in str(denied)


async def test_a_rate_limit_and_session_memory_cost_one_round_trip_together(
    pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "both")
    # One read each; the token is the one thing to write.
    assert await commands_during(shared_redis, lambda: lookups(client, "j1", TOKEN)) == ["EVALSHA"] * 3


async def test_a_limit_read_with_session_memory_counts_exactly_across_replicas(
    pair: list[Replica], http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "both")  # the session's first call of its 6
    statuses = [(await client.call("lookup_journey", "j1")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


async def test_a_history_route_reads_once_and_records_each_forwarded_call(
    pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "history")
    assert await commands_during(shared_redis, lambda: lookups(client, "j1", "j2")) == ["EVALSHA"] * 4


async def test_a_denied_call_is_not_recorded(
    pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "history")
    denied = await commands_during(shared_redis, lambda: client.call("send_journey", "never-looked-up"))
    assert denied == ["EVALSHA"]


async def test_a_route_with_both_fails_closed_while_redis_is_down(
    pair: list[Replica], shared_redis: RedisServer, http: httpx.AsyncClient
) -> None:
    client = await opened(http, pair, "both")
    shared_redis.stop()
    response = await client.call("lookup_journey", "j1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == -32603
    assert "rate limit of route both could not be counted" in response.json()["error"]["message"]

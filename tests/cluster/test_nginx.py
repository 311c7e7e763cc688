"""Three replicas behind deploy/nginx.conf (round robin, no stickiness), as compose runs them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest

from tests.clients import MCP_HEADERS, Connection, connect, request
from tests.cluster.conftest import POLICIES
from tests.cluster.nginx import nginx
from tests.cluster.redis_server import RedisServer
from tests.cluster.topology import Replica, replicas, route_config
from tests.polling import eventually

pytestmark = pytest.mark.slow  # see docs/how-to/test.md


@dataclass
class Cluster:
    url: str
    replicas: list[Replica]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, module_redis: RedisServer, upstream_url: str
) -> Iterator[Cluster]:
    route = partial(route_config, upstream_url=upstream_url)
    routes = [
        route("crm"),
        route("global", rate_limit={"requests": 7, "per_seconds": 600, "key": "route"}),
        route("history"),
    ]
    directory = tmp_path_factory.mktemp("cluster")
    with replicas(3, directory, module_redis.url, routes, policies=[str(POLICIES)]) as running:
        front = directory / "nginx"
        front.mkdir()
        with nginx([replica.proxy.port for replica in running], front) as url:
            yield Cluster(url, running)


def test_round_robin_reaches_every_replica(cluster: Cluster) -> None:
    pids = {httpx.get(f"{cluster.url}/healthz").json()["pid"] for _ in range(6)}
    assert len(pids) == 3


@pytest.mark.anyio
async def test_an_sdk_session_continues_across_replicas(cluster: Cluster) -> None:
    async with connect(f"{cluster.url}/crm/mcp") as connection:
        for index in range(6):
            result = await connection.session.call_tool("create_contact", {"email": f"a{index}@example.com"})
            assert not result.is_error
            assert result.content[0].text == f"a{index}@example.com"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_history_based_policy_holds_across_replicas(cluster: Cluster) -> None:
    async def outcome(connection: Connection, tool: str, journey: str) -> bool:
        result = await connection.session.call_tool(tool, {"journey_id": journey})
        return not result.is_error

    async with connect(f"{cluster.url}/history/mcp") as connection:
        decided = [
            await outcome(connection, "send_journey", "j1"),
            await outcome(connection, "lookup_journey", "j1"),
            *[await outcome(connection, "send_journey", "j1") for _ in range(3)],
            *[await outcome(connection, "send_journey", "j2") for _ in range(3)],
        ]
    assert decided == [False, True, True, True, True, False, False, False]


def test_a_route_limit_is_exact_across_replicas(cluster: Cluster) -> None:
    statuses = [
        httpx.post(f"{cluster.url}/global/mcp", json=request("ping", id=i), headers=MCP_HEADERS).status_code
        for i in range(10)
    ]
    assert [status == 429 for status in statuses] == [False] * 7 + [True] * 3


def test_a_token_route_created_on_one_replica_answers_through_the_balancer(cluster: Cluster) -> None:
    response = cluster.replicas[2].admin.post("/admin/routes", json={"name": "via-nginx", "upstream": "crm"})
    assert response.status_code == 201, response.text
    path = "/mcp/" + response.json()["url"].rsplit("/mcp/", 1)[1]

    def every_replica_serves() -> bool:
        answers = [
            httpx.post(f"{cluster.url}{path}", json=request("ping"), headers=MCP_HEADERS).status_code
            for _ in range(3)
        ]
        return 404 not in answers

    eventually(every_replica_serves)


@pytest.mark.anyio
async def test_a_session_survives_the_death_of_a_replica(cluster: Cluster) -> None:
    async with connect(f"{cluster.url}/crm/mcp") as connection:
        assert not (await connection.session.call_tool("list_contacts", {})).is_error
        cluster.replicas[1].proxy.stop()
        for _ in range(6):
            assert not (await connection.session.call_tool("list_contacts", {})).is_error

"""Replicas sharing Redis: token routes, the admin API and the probes, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import httpx
import pytest
import redis

from tests.access.test_proxy_access import tool_names
from tests.clients import (
    MCP_HEADERS,
    open_raw_session,
    request,
    response_message,
    session_headers,
)
from tests.cluster.conftest import POLICIES
from tests.cluster.redis_server import RedisServer
from tests.cluster.topology import PUBLIC_URL, Replica, replicas, route_config
from tests.polling import eventually

pytestmark = pytest.mark.slow  # see docs/how-to/test.md


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, module_redis: RedisServer, upstream_url: str
) -> Iterator[list[Replica]]:
    route = partial(route_config, upstream_url=upstream_url)
    routes = [
        route("crm"),
        route("global", rate_limit={"requests": 5, "per_seconds": 600, "key": "route"}),
        route("per-session", rate_limit={"requests": 3, "per_seconds": 600, "key": "session"}),
        route("history"),
    ]
    directory = tmp_path_factory.mktemp("replicas")
    with replicas(2, directory, module_redis.url, routes, policies=[str(POLICIES)]) as running:
        yield running


def status(url: str) -> int:
    return httpx.post(url, json=request("ping"), headers=MCP_HEADERS, timeout=10).status_code


def create(replica: Replica, name: str, **body: object) -> dict[str, object]:
    response = replica.admin.post("/admin/routes", json={"name": name, "upstream": "crm", **body})
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


@pytest.mark.anyio
async def test_a_token_route_created_on_one_replica_serves_on_the_other(pair: list[Replica]) -> None:
    created = create(pair[0], "served", config={"methods": ["read"]})
    url = pair[1].token_route_url(created)
    eventually(lambda: status(url) != 404)
    assert await tool_names(url) == ["list_contacts", "lookup_journey"]


def test_route_urls_start_with_the_public_url(pair: list[Replica]) -> None:
    assert str(create(pair[0], "public")["url"]).startswith(f"{PUBLIC_URL}/mcp/")


def test_a_route_revoked_on_one_replica_is_404_on_every_replica(pair: list[Replica]) -> None:
    created = create(pair[0], "revoked")
    urls = [replica.token_route_url(created) for replica in pair]
    eventually(lambda: all(status(url) != 404 for url in urls))
    assert pair[1].admin.delete(f"/admin/routes/{created['id']}").status_code == 204
    eventually(lambda: all(status(url) == 404 for url in urls))


@pytest.mark.anyio
async def test_a_route_changed_on_one_replica_is_filtered_anew_on_the_other(pair: list[Replica]) -> None:
    created = create(pair[0], "changed")
    url = pair[0].token_route_url(created)
    route = f"/admin/routes/{created['id']}"
    eventually(lambda: pair[1].admin.get(route).status_code == 200)  # the create reached it
    patched = pair[1].admin.patch(route, json={"config": {"methods": ["read"]}})
    assert patched.status_code == 200, patched.text
    eventually(lambda: pair[0].admin.get(route).json()["config"]["methods"] == ["read"])
    assert await tool_names(url) == ["list_contacts", "lookup_journey"]


def test_two_replicas_racing_for_one_name_create_one_route(pair: list[Replica]) -> None:
    import concurrent.futures

    def attempt(replica: Replica) -> int:
        body = {"name": "raced", "upstream": "crm"}
        return replica.admin.post("/admin/routes", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(attempt, pair))
    assert codes == [201, 409]
    names = [r["name"] for r in pair[1].admin.get("/admin/routes").json()["routes"]]
    assert names.count("raced") == 1


def test_healthz_and_readyz_answer_on_the_proxy_port(pair: list[Replica]) -> None:
    assert httpx.get(pair[0].url("/healthz")).status_code == 200
    assert httpx.get(pair[0].url("/readyz")).status_code == 200


def test_readyz_fails_while_redis_is_down_and_recovers_by_itself(
    pair: list[Replica], shared_redis: RedisServer
) -> None:
    shared_redis.stop()
    eventually(lambda: httpx.get(pair[0].url("/readyz"), timeout=10).status_code == 503)
    assert "Redis" in httpx.get(pair[0].url("/readyz"), timeout=10).json()["reason"]
    assert httpx.get(pair[0].url("/healthz")).status_code == 200
    shared_redis.start()
    eventually(lambda: httpx.get(pair[0].url("/readyz"), timeout=10).status_code == 200)


def test_admin_writes_answer_503_while_redis_is_down(pair: list[Replica], shared_redis: RedisServer) -> None:
    shared_redis.stop()
    response = pair[0].admin.post("/admin/tokens", json={"name": "agent"})
    assert response.status_code == 503
    assert "Redis" in response.json()["error"]


def alternate(pair: list[Replica], path: str, count: int, headers: dict[str, str] | None = None) -> list[int]:
    """``count`` pings sent round robin over the replicas; their HTTP statuses."""
    sent = {**MCP_HEADERS, **(headers or {})}
    return [
        httpx.post(pair[i % len(pair)].url(path), json=request("ping", id=i), headers=sent).status_code
        for i in range(count)
    ]


def test_a_route_limit_counts_exactly_once_across_replicas(pair: list[Replica]) -> None:
    refused = [status == 429 for status in alternate(pair, "/global/mcp", 8)]
    assert refused == [False] * 5 + [True] * 3


@pytest.mark.anyio
async def test_a_session_opened_on_one_replica_is_counted_as_that_session_on_another(
    pair: list[Replica],
) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, pair[0].url("/per-session/mcp"))
    # Issued on replica 0: replica 1 trusts it, so the first refused is the session's fourth call.
    # (The two handshake requests counted under the client before the id existed.)
    statuses = alternate(pair, "/per-session/mcp", 4, session_headers(session_id))
    assert statuses == [200, 200, 200, 429]


@pytest.mark.anyio
async def test_calls_go_on_when_redis_closes_the_replicas_idle_connections(
    pair: list[Replica], shared_redis: RedisServer
) -> None:
    """A restart or failover leaves pooled connections dead: the first call after it is
    not refused (what Redis closed is retried once on a fresh connection)."""
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        await open_raw_session(http, pair[0].url("/per-session/mcp"))  # the pool holds connections now
        with redis.Redis.from_url(shared_redis.url) as admin:
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        session_id = await open_raw_session(http, pair[0].url("/per-session/mcp"))

    assert session_id
    assert httpx.get(pair[0].url("/readyz")).status_code == 200


def test_a_limited_route_fails_closed_while_redis_is_down(
    pair: list[Replica], shared_redis: RedisServer
) -> None:
    shared_redis.stop()
    response = httpx.post(pair[0].url("/global/mcp"), json=request("ping"), headers=MCP_HEADERS, timeout=30)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == -32603
    assert "could not be counted" in response.json()["error"]["message"]
    assert status(pair[0].url("/crm/mcp")) != 503  # a route that needs no shared state still serves


def call(tool: str, journey: str, id: int) -> dict[str, object]:
    return request("tools/call", {"name": tool, "arguments": {"journey_id": journey}}, id)


def is_denied(response: httpx.Response) -> bool:
    answer = response_message(response)
    return bool(answer["result"].get("isError")) and "look the journey up first" in str(answer)


@pytest.mark.anyio
async def test_a_history_based_policy_decides_alike_on_every_replica(pair: list[Replica]) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, pair[0].url("/history/mcp"))
        headers = session_headers(session_id)

        async def on(replica: Replica, message: dict[str, object]) -> httpx.Response:
            return await http.post(replica.url("/history/mcp"), json=message, headers=headers)

        assert is_denied(await on(pair[1], call("send_journey", "j1", 1)))
        assert not is_denied(await on(pair[0], call("lookup_journey", "j1", 2)))
        assert not is_denied(await on(pair[1], call("send_journey", "j1", 3)))
        assert is_denied(await on(pair[0], call("send_journey", "j2", 4)))


@pytest.mark.anyio
async def test_calls_needing_session_memory_fail_closed_while_redis_is_down(
    pair: list[Replica], shared_redis: RedisServer
) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=30) as http:
        session_id = await open_raw_session(http, pair[0].url("/history/mcp"))
        shared_redis.stop()
        headers = session_headers(session_id)
        url = pair[1].url("/history/mcp")
        response = await http.post(url, json=call("send_journey", "j1", 1), headers=headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == -32603
    assert "session memory could not be read" in response.json()["error"]["message"]

"""Routes and access end to end: ``mcpfence serve`` between the SDK client and a real server.

These drive the proxy's wiring of the access pieces (exposure filters, token routes,
API-token auth, expiry, rate limits) through its public surfaces only: the MCP
listener, the admin API on ``server.admin_port`` and the config keys ``expose``,
``rate_limit`` and ``storage``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.admin.conftest import ADMIN_TOKEN, TAGS, upstream_server
from tests.clients import (
    MCP_HEADERS,
    connect,
    open_raw_session,
    request,
    session_headers,
)
from tests.decision_log import written_lines
from tests.servers import Proxy, free_port, run_proxy, serve_asgi, wait_for_port

ENV = {"MCPFENCE_ADMIN_TOKEN": ADMIN_TOKEN}
UPSTREAM_429_HEADERS = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}


class RateLimitedUpstream:
    """A real MCP server whose ``tools/call`` answers are all HTTP 429 with vendor headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tool_calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b'"tools/call"' in body:
            self.tool_calls += 1
            limited = JSONResponse({"error": "slow down"}, status_code=429, headers=UPSTREAM_429_HEADERS)
            await limited(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def limited_upstream() -> Iterator[tuple[str, RateLimitedUpstream]]:
    app = RateLimitedUpstream(upstream_server().streamable_http_app())
    with serve_asgi(app) as base:
        yield base + "/mcp", app


def proxy_config(upstream_url: str, limited_url: str, storage: Path, admin_port: int) -> dict[str, Any]:
    def route(name: str, url: str = upstream_url, **extra: Any) -> dict[str, Any]:
        return {"name": name, "path": f"/{name}/mcp", "upstream": {"url": url}, **extra}

    return {
        "server": {"admin_port": admin_port},
        "storage": {"path": str(storage)},
        "decision_log": {"path": str(storage.parent / "decisions.jsonl")},
        "tags": TAGS,
        "routes": [
            route("crm"),
            route("crm-read", expose={"methods": ["read"]}),
            route("crm-journeys", expose={"tags": ["journeys"]}),
            route("crm-burst", rate_limit={"requests": 3, "per_seconds": 60, "key": "route"}),
            route("crm-limited", rate_limit={"requests": 100, "per_seconds": 60, "key": "session"}),
            route("vendor", url=limited_url),
            route("crm-hidden", public=False),
        ],
    }


class Running:
    def __init__(self, proxy: Proxy, admin_port: int) -> None:
        self.proxy = proxy
        self.admin = httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    def create_route(self, **body: Any) -> dict[str, Any]:
        response = self.admin.post("/admin/routes", json={"upstream": "crm", **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def decisions(self) -> list[dict[str, Any]]:
        return written_lines(self.proxy.config_path.parent / "decisions.jsonl")

    def local_url(self, created: dict[str, Any]) -> str:
        """The route's URL on this proxy (the path the admin API printed)."""
        return self.proxy.url("/mcp/" + created["url"].rsplit("/mcp/", 1)[1])


@contextmanager
def start(tmp_path: Path, upstream_url: str, limited_url: str) -> Iterator[Running]:
    admin_port = free_port()
    config = proxy_config(upstream_url, limited_url, tmp_path / "routes.db", admin_port)
    with run_proxy(config, tmp_path, ENV) as proxy:
        wait_for_port(admin_port, process=proxy.process)
        yield Running(proxy, admin_port)


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
    upstream_url: str,
    limited_upstream: tuple[str, RateLimitedUpstream],
) -> Iterator[Running]:
    with start(tmp_path_factory.mktemp("proxy"), upstream_url, limited_upstream[0]) as running:
        yield running


async def tool_names(url: str, headers: dict[str, str] | None = None) -> list[str]:
    async with connect(url, headers) as connection:
        return sorted(tool.name for tool in (await connection.session.list_tools()).tools)


@pytest.mark.anyio
async def test_read_only_route_hides_write_and_custom_tools(running: Running) -> None:
    assert await tool_names(running.proxy.url("/crm-read/mcp")) == ["list_contacts", "lookup_journey"]


@pytest.mark.anyio
async def test_read_only_route_refuses_a_write_tool_naming_the_filter(running: Running) -> None:
    async with connect(running.proxy.url("/crm-read/mcp")) as connection:
        result = await connection.session.call_tool("create_contact", {"email": "a@example.com"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "create_contact" in text
    assert "write" in text


@pytest.mark.anyio
async def test_tag_filter_exposes_only_matching_tools(running: Running) -> None:
    assert await tool_names(running.proxy.url("/crm-journeys/mcp")) == ["lookup_journey", "send_journey"]


@pytest.mark.anyio
async def test_token_route_url_works_with_its_filters(running: Running) -> None:
    created = running.create_route(name="token-read", config={"methods": ["read"]})
    assert await tool_names(running.local_url(created)) == ["list_contacts", "lookup_journey"]


@pytest.mark.anyio
async def test_token_route_without_filters_keeps_its_config_routes_filter(running: Running) -> None:
    created = running.create_route(name="token-on-read", upstream="crm-read")
    assert await tool_names(running.local_url(created)) == ["list_contacts", "lookup_journey"]


@pytest.mark.anyio
async def test_token_route_filters_narrow_its_config_routes_filter(running: Running) -> None:
    config = {"methods": ["read", "custom"], "tags": ["journeys"]}
    created = running.create_route(name="token-narrowed", upstream="crm-read", config=config)
    assert await tool_names(running.local_url(created)) == ["lookup_journey"]


@pytest.mark.anyio
async def test_token_route_refuses_a_call_its_config_route_hides(running: Running) -> None:
    created = running.create_route(name="token-read-call", upstream="crm-read")
    async with connect(running.local_url(created)) as connection:
        await connection.session.list_tools()
        result = await connection.session.call_tool("create_contact", {"email": "a@example.com"})
    assert result.is_error
    assert "write" in result.content[0].text  # type: ignore[union-attr]


def test_admin_refuses_token_route_filters_that_leave_nothing_of_the_config_route(running: Running) -> None:
    body = {"name": "token-empty", "upstream": "crm-read", "config": {"methods": ["write"]}}
    response = running.admin.post("/admin/routes", json=body)
    assert response.status_code == 400
    assert "no tool" in response.json()["error"]


@pytest.mark.anyio
async def test_private_config_route_is_not_served_at_its_path(running: Running) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS) as http:
        for path in ("/crm-hidden/mcp", "/crm-hidden/mcp/sse"):
            response = await http.post(running.proxy.url(path), json=request("ping"))
            assert response.status_code == 404


@pytest.mark.anyio
async def test_private_config_route_serves_its_token_routes(running: Running) -> None:
    created = running.create_route(name="token-on-hidden", upstream="crm-hidden")
    assert "create_contact" in await tool_names(running.local_url(created))


@pytest.mark.anyio
async def test_unknown_token_route_is_404(running: Running) -> None:
    async with httpx.AsyncClient(headers=MCP_HEADERS) as http:
        response = await http.post(running.proxy.url("/mcp/" + "0" * 64), json=request("ping"))
    assert response.status_code == 404


@pytest.mark.anyio
async def test_api_token_route_refuses_clients_without_a_token(running: Running) -> None:
    created = running.create_route(name="token-auth", require_api_token_auth=True)
    async with httpx.AsyncClient(headers=MCP_HEADERS) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = await http.post(running.local_url(created), json=request("ping"), headers=headers)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.anyio
async def test_api_token_route_serves_clients_with_a_token(running: Running) -> None:
    created = running.create_route(name="token-auth-ok", require_api_token_auth=True)
    api_token = running.admin.post("/admin/tokens", json={"name": "agent-ok"}).json()["token"]
    names = await tool_names(running.local_url(created), {"Authorization": f"Bearer {api_token}"})
    assert "create_contact" in names


@pytest.mark.anyio
async def test_api_token_name_is_the_client_id_in_the_decision_log(running: Running) -> None:
    created = running.create_route(name="token-client-id", require_api_token_auth=True)
    api_token = running.admin.post("/admin/tokens", json={"name": "agent-logged"}).json()["token"]
    headers = {"Authorization": f"Bearer {api_token}"}
    async with connect(running.local_url(created), headers) as connection:
        await connection.session.call_tool("list_contacts", {})
    assert any(d["client_id"] == "agent-logged" and d["tool"] == "list_contacts" for d in running.decisions())


@pytest.mark.slow
@pytest.mark.anyio
async def test_route_expiring_during_a_session_answers_404(running: Running) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    created = running.create_route(name="token-expiring", expires_at=expires.isoformat())
    url = running.local_url(created)
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        while datetime.now(UTC) < expires:
            await anyio.sleep(0.1)
        response = await http.post(url, json=request("tools/list"), headers=session_headers(session_id))
    assert response.status_code == 404


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_open_server_stream_ends_when_its_route_expires(running: Running) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=2)
    created = running.create_route(name="token-stream-expiring", expires_at=expires.isoformat())
    url = running.local_url(created)
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        headers = {**session_headers(session_id), "accept": "text/event-stream"}
        with anyio.fail_after(8):  # the purge runs every second; the stream must not outlive it
            async with http.stream("GET", url, headers=headers) as stream:
                assert stream.status_code == 200
                async for _ in stream.aiter_bytes():
                    pass
    assert datetime.now(UTC) >= expires


async def raw_burst(url: str, count: int) -> list[httpx.Response]:
    """Open a session with raw requests and send ``count`` tools/list requests in it."""
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        headers = session_headers(session_id)
        return [await http.post(url, json=request("tools/list", id=i), headers=headers) for i in range(count)]


@pytest.mark.anyio
async def test_a_burst_over_the_route_limit_gets_429_with_headers(running: Running) -> None:
    responses = await raw_burst(running.proxy.url("/crm-burst/mcp"), 6)
    refused = [r for r in responses if r.status_code == 429]
    assert refused
    assert refused[0].headers["RateLimit-Limit"] == "3"
    assert refused[0].headers["RateLimit-Remaining"] == "0"
    assert int(refused[0].headers["RateLimit-Reset"]) > 0
    assert int(refused[0].headers["Retry-After"]) >= 1


@pytest.mark.anyio
async def test_responses_under_the_limit_carry_rate_limit_headers(running: Running) -> None:
    (response,) = await raw_burst(running.proxy.url("/crm-limited/mcp"), 1)
    assert response.status_code == 200
    assert response.headers["RateLimit-Limit"] == "100"
    assert int(response.headers["RateLimit-Remaining"]) < 100


@pytest.mark.anyio
async def test_upstream_429_is_passed_through_once_with_normalized_headers(
    running: Running, limited_upstream: tuple[str, RateLimitedUpstream]
) -> None:
    url = running.proxy.url("/vendor/mcp")
    upstream = limited_upstream[1]
    before = upstream.tool_calls
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        call = request("tools/call", {"name": "list_contacts", "arguments": {}})
        response = await http.post(url, json=call, headers=session_headers(session_id))
    assert response.status_code == 429
    assert upstream.tool_calls == before + 1
    assert response.headers["RateLimit-Limit"] == "100"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Reset"] == "30"
    assert response.headers["X-RateLimit-Limit"] == "100"


@pytest.mark.slow
@pytest.mark.anyio
async def test_routes_survive_a_restart_and_tokens_stay_out_of_logs(
    tmp_path: Path, upstream_url: str, limited_upstream: tuple[str, RateLimitedUpstream]
) -> None:
    with start(tmp_path, upstream_url, limited_upstream[0]) as first:
        created = first.create_route(name="durable", config={"methods": ["read"]})
        output = first.proxy.stop()
    token = created["url"].rsplit("/", 1)[1]
    with start(tmp_path, upstream_url, limited_upstream[0]) as second:
        assert await tool_names(second.proxy.url("/mcp/" + token)) == ["list_contacts", "lookup_journey"]
        output += second.proxy.stop()
    assert token not in output
    assert token.encode() not in (tmp_path / "routes.db").read_bytes()


REBOUND = ({"Host": "evil.example"}, {"Origin": "http://evil.example"})


@pytest.mark.parametrize("headers", REBOUND, ids=["host", "origin"])
@pytest.mark.parametrize("path", ["/metrics", "/admin/routes"])
def test_admin_listener_refuses_rebound_hosts_and_foreign_origins(
    running: Running, path: str, headers: dict[str, str]
) -> None:
    response = running.admin.get(path, headers=headers)
    assert response.status_code in (403, 421)
    assert "not allowed" in response.json()["error"]


def test_admin_listener_serves_metrics_to_local_clients(running: Running) -> None:
    response = running.admin.get("/metrics", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 200


@pytest.mark.anyio
async def test_client_chosen_names_never_become_metric_labels(running: Running) -> None:
    """Tool names the route never listed and unknown methods are counted as ``other``:
    a client cannot grow the metrics without bound."""
    url = running.proxy.url("/crm/mcp")
    async with httpx.AsyncClient(headers=MCP_HEADERS, timeout=10) as http:
        session_id = await open_raw_session(http, url)
        headers = session_headers(session_id)
        await http.post(url, json=request("tools/list"), headers=headers)
        for name in ("list_contacts", "made_up_tool_7781"):
            call = request("tools/call", {"name": name, "arguments": {}})
            await http.post(url, json=call, headers=headers)
        await http.post(url, json=request("made/up-method-7781"), headers=headers)
    metrics = running.admin.get("/metrics").text
    assert 'tool="list_contacts"' in metrics
    assert 'tool="other"' in metrics
    assert 'mcp_method_name="other"' in metrics
    assert "made_up_tool_7781" not in metrics and "made/up-method-7781" not in metrics

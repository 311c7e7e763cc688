"""The admin API over real sockets: auth, token routes, API tokens, policies."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcpfence.access.store import SQLiteStore
from mcpfence.access.tokens import hash_token, route_token_from_path
from mcpfence.admin.app import AdminTokenMissing, PolicySetSummary, create_admin_app
from tests.servers import serve_asgi

from .conftest import ADMIN_TOKEN, Admin


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def route_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "acme",
        "upstream": "crm",
        "config": {"methods": ["read"], "tags": []},
        "expires_at": None,
        "require_api_token_auth": False,
        **overrides,
    }


def database_bytes(db_path: Path) -> bytes:
    """The database and any journal beside it: everything SQLite wrote."""
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


def test_requests_without_a_token_get_401(admin: Admin) -> None:
    response = admin.client(token=None).get("/admin/routes")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"error": "missing or wrong admin token"}


def test_requests_with_a_wrong_token_get_401(admin: Admin) -> None:
    assert admin.client(token="nope").get("/admin/tokens").status_code == 401


async def no_tools(upstream: str) -> list[tuple[str, None]]:
    return []


def bare_app(tmp_path: Path, **overrides: Any) -> Starlette:
    """An admin app with no config routes, for tests of the app's own wiring."""
    arguments: dict[str, Any] = {
        "public_url": "http://127.0.0.1:8080",
        "upstreams": [],
        "tag_globs": {},
        "list_tools": no_tools,
        "policies": lambda: PolicySetSummary("rev", []),
        **overrides,
    }
    return create_admin_app(SQLiteStore(tmp_path / "db"), **arguments)


def test_app_is_not_built_without_an_admin_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPFENCE_ADMIN_TOKEN", raising=False)
    with pytest.raises(AdminTokenMissing, match="MCPFENCE_ADMIN_TOKEN"):
        bare_app(tmp_path)


def test_admin_token_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPFENCE_ADMIN_TOKEN", "from-env")
    with serve_asgi(bare_app(tmp_path)) as url:
        response = httpx.get(url + "/admin/policies", headers={"Authorization": "Bearer from-env"})
    assert response.json() == {"revision": "rev", "policies": []}


def test_unreachable_upstream_fails_creation_with_502(tmp_path: Path) -> None:
    async def unreachable(upstream: str) -> list[tuple[str, None]]:
        raise ConnectionError("connection refused")

    app = bare_app(tmp_path, upstreams=["crm"], list_tools=unreachable, admin_token=ADMIN_TOKEN)
    with serve_asgi(app) as url:
        response = httpx.post(
            url + "/admin/routes",
            json=route_body(),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert response.status_code == 502
    assert response.json() == {"error": "could not list the tools of 'crm': connection refused"}


def test_create_route_returns_its_url_once(admin: Admin) -> None:
    response = admin.client().post("/admin/routes", json=route_body(expires_at=in_an_hour()))
    assert response.status_code == 201
    created = response.json()
    assert created["url"].startswith("http://proxy.example:8080/mcp/")
    token = route_token_from_path(created["url"].removeprefix("http://proxy.example:8080"))
    assert token is not None
    assert admin.store.route_by_token_hash(hash_token(token)) is not None
    listed = admin.client().get(f"/admin/routes/{created['id']}").json()
    assert "url" not in listed
    assert token not in admin.client().get("/admin/routes").text


def test_created_route_is_listed_and_fetched(admin: Admin) -> None:
    created = admin.client().post("/admin/routes", json=route_body()).json()
    expected = {key: value for key, value in created.items() if key != "url"}
    assert admin.client().get("/admin/routes").json() == {"routes": [expected]}
    assert admin.client().get(f"/admin/routes/{created['id']}").json() == expected
    assert expected["config"] == {"methods": ["read"], "tags": []}


def test_route_token_is_never_stored_or_logged(admin: Admin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = admin.client().post("/admin/routes", json=route_body()).json()
    token = created["url"].rsplit("/", 1)[1]
    assert token.encode() not in database_bytes(admin.db_path)
    assert hash_token(token).encode() in database_bytes(admin.db_path)
    assert token not in caplog.text


def test_patch_changes_filters_and_expiry(admin: Admin) -> None:
    created = admin.client().post("/admin/routes", json=route_body()).json()
    expires = in_an_hour()
    response = admin.client().patch(
        f"/admin/routes/{created['id']}",
        json={"config": {"methods": ["read", "write"], "tags": ["contacts"]}, "expires_at": expires},
    )
    assert response.status_code == 200
    assert response.json()["config"] == {"methods": ["read", "write"], "tags": ["contacts"]}
    assert response.json()["expires_at"] == datetime.fromisoformat(expires).isoformat()
    assert admin.client().get(f"/admin/routes/{created['id']}").json() == response.json()


def test_patch_keeps_the_token(admin: Admin) -> None:
    created = admin.client().post("/admin/routes", json=route_body()).json()
    admin.client().patch(f"/admin/routes/{created['id']}", json={"require_api_token_auth": True})
    token = created["url"].rsplit("/", 1)[1]
    route = admin.store.route_by_token_hash(hash_token(token))
    assert route is not None
    assert route.require_api_token_auth


def test_delete_removes_the_route_and_ends_its_sessions(admin: Admin) -> None:
    created = admin.client().post("/admin/routes", json=route_body()).json()
    assert admin.client().delete(f"/admin/routes/{created['id']}").status_code == 204
    assert admin.client().get(f"/admin/routes/{created['id']}").status_code == 404
    assert admin.removed == [created["id"]]


def test_unknown_route_is_404(admin: Admin) -> None:
    response = admin.client().delete("/admin/routes/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "no route nope"}


def test_expiry_in_the_past_is_refused(admin: Admin) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    response = admin.client().post("/admin/routes", json=route_body(expires_at=past))
    assert response.status_code == 400
    assert response.json() == {"error": "expires_at must be in the future"}


def test_filters_that_leave_no_tool_are_refused(admin: Admin) -> None:
    body = route_body(config={"methods": ["write"], "tags": ["journeys"]})
    response = admin.client().post("/admin/routes", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "config leaves no tool of 'crm' exposed"}


def test_filters_leaving_one_tool_are_accepted(admin: Admin) -> None:
    body = route_body(config={"methods": ["read"], "tags": ["journeys"]})
    assert admin.client().post("/admin/routes", json=body).status_code == 201


def test_upstream_must_name_a_config_route(admin: Admin) -> None:
    response = admin.client().post("/admin/routes", json=route_body(upstream="http://evil.example/mcp"))
    assert response.status_code == 400
    assert "upstream must name a route of the config file (known: crm)" in response.json()["error"]


def test_unknown_tag_is_refused(admin: Admin) -> None:
    response = admin.client().post("/admin/routes", json=route_body(config={"tags": ["billing"]}))
    assert response.status_code == 400
    assert response.json() == {"error": "config: unknown tags: billing"}


def test_unknown_fields_and_bad_methods_are_refused(admin: Admin) -> None:
    response = admin.client().post(
        "/admin/routes", json=route_body(colour="red", config={"methods": ["admin"]})
    )
    assert response.status_code == 400
    assert "colour" in response.json()["error"]
    assert "config.methods.0" in response.json()["error"]


def test_body_that_is_not_json_is_refused(admin: Admin) -> None:
    response = admin.client().post("/admin/routes", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"].startswith("request body is not JSON")


def test_duplicate_route_name_is_a_conflict(admin: Admin) -> None:
    assert admin.client().post("/admin/routes", json=route_body()).status_code == 201
    response = admin.client().post("/admin/routes", json=route_body())
    assert response.status_code == 409
    assert response.json() == {"error": "a route named 'acme' already exists"}


def test_api_token_is_shown_once_and_stored_hashed(admin: Admin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = admin.client().post("/admin/tokens", json={"name": "agent"})
    assert response.status_code == 201
    token = response.json()["token"]
    assert response.json()["name"] == "agent"
    listed = admin.client().get("/admin/tokens").json()["tokens"]
    assert [t["name"] for t in listed] == ["agent"]
    assert token not in str(listed)
    assert token.encode() not in database_bytes(admin.db_path)
    assert token not in caplog.text


def test_duplicate_api_token_name_is_a_conflict(admin: Admin) -> None:
    admin.client().post("/admin/tokens", json={"name": "agent"})
    assert admin.client().post("/admin/tokens", json={"name": "agent"}).status_code == 409


def test_api_token_is_revoked_by_name(admin: Admin) -> None:
    admin.client().post("/admin/tokens", json={"name": "agent"})
    assert admin.client().delete("/admin/tokens/agent").status_code == 204
    assert admin.client().get("/admin/tokens").json() == {"tokens": []}
    assert admin.client().delete("/admin/tokens/agent").status_code == 404


def test_policies_lists_the_loaded_set_and_revision(admin: Admin) -> None:
    assert admin.client().get("/admin/policies").json() == {
        "revision": "sha256:abc",
        "policies": ["crm-lowercase-emails"],
    }


def test_extra_routes_are_served_beside_the_admin_api(tmp_path: Path) -> None:
    async def metrics(request: object) -> PlainTextResponse:
        return PlainTextResponse("mcpfence_decisions_total 0\n")

    app = bare_app(tmp_path, admin_token=ADMIN_TOKEN, extra_routes=[Route("/metrics", metrics)])
    with serve_asgi(app) as url:
        assert httpx.get(url + "/metrics").text == "mcpfence_decisions_total 0\n"

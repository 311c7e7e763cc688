"""The SQLite route store: durable, migrated once, expired routes gone at once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from mcpfence.access.store import MIGRATIONS, ApiToken, SQLiteStore, StoreConflict, TokenRoute
from mcpfence.access.tokens import hash_token
from mcpfence.admin.expiry import purge_expired_routes
from tests.polling import until

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make_route(name: str = "acme", expires_at: datetime | None = None) -> TokenRoute:
    return TokenRoute(
        id=f"id-{name}",
        name=name,
        token_sha256=hash_token(f"token-{name}"),
        upstream="crm",
        methods=("read",),
        tags=("contacts",),
        expires_at=expires_at,
        require_api_token_auth=True,
        created_at=T0,
    )


@pytest.mark.anyio
async def test_routes_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.add_route(make_route(expires_at=T0 + timedelta(days=1)))
    await store.add_api_token(ApiToken("agent", hash_token("secret"), T0))
    store.close()

    reopened = SQLiteStore(tmp_path / "db", clock=Clock())
    assert reopened.routes() == [make_route(expires_at=T0 + timedelta(days=1))]
    assert reopened.api_tokens() == [ApiToken("agent", hash_token("secret"), T0)]


@pytest.mark.anyio
async def test_lookup_by_token_hash_finds_the_route(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.add_route(make_route())
    assert store.route_by_token_hash(hash_token("token-acme")) == make_route()
    assert store.route_by_token_hash(hash_token("other")) is None


def test_migrations_run_once_and_reopening_is_idempotent(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "db").close()
    store = SQLiteStore(tmp_path / "db")
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(tmp_path / "db") as db:
        assert db.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "db").close()
    with sqlite3.connect(tmp_path / "db") as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer than this mcpfence"):
        SQLiteStore(tmp_path / "db")


@pytest.mark.anyio
async def test_expired_route_is_absent_before_any_purge(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteStore(tmp_path / "db", clock=clock)
    route = make_route(expires_at=T0 + timedelta(minutes=5))
    await store.add_route(route)
    clock.now += timedelta(minutes=5)
    assert store.route_by_token_hash(route.token_sha256) is None
    assert store.route(route.id) is None
    assert store.routes() == []


@pytest.mark.anyio
async def test_purge_deletes_expired_routes_and_reports_them(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteStore(tmp_path / "db", clock=clock)
    await store.add_route(make_route("old", expires_at=T0 + timedelta(minutes=1)))
    await store.add_route(make_route("forever"))
    clock.now += timedelta(hours=1)
    removed: list[str] = []

    async def on_removed(route_id: str) -> None:
        removed.append(route_id)

    assert await purge_expired_routes(store, on_removed) == ["id-old"]
    assert removed == ["id-old"]
    store.close()
    with sqlite3.connect(tmp_path / "db") as db:
        assert db.execute("SELECT name FROM routes").fetchall() == [("forever",)]


@pytest.mark.anyio
async def test_update_replaces_a_route_durably(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.add_route(make_route())
    changed = TokenRoute(**{**make_route().__dict__, "methods": ("read", "write")})
    assert await store.update_route(changed)
    store.close()
    assert SQLiteStore(tmp_path / "db").route("id-acme") == changed


@pytest.mark.anyio
async def test_update_of_an_unknown_route_reports_false(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    assert not await store.update_route(make_route())
    assert store.routes() == []


@pytest.mark.anyio
async def test_delete_removes_route_and_its_token(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.add_route(make_route())
    assert await store.delete_route("id-acme")
    assert not await store.delete_route("id-acme")
    assert store.route_by_token_hash(hash_token("token-acme")) is None


@pytest.mark.anyio
async def test_duplicate_route_name_is_a_conflict(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.add_route(make_route())
    duplicate = TokenRoute(**{**make_route().__dict__, "id": "other", "token_sha256": "x"})
    with pytest.raises(StoreConflict):
        await store.add_route(duplicate)
    assert store.routes() == [make_route()]


@pytest.mark.anyio
async def test_api_tokens_are_deleted_by_name(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    await store.add_api_token(ApiToken("agent", hash_token("secret"), T0))
    assert await store.delete_api_token("agent")
    assert not await store.delete_api_token("agent")
    assert store.api_tokens() == []


@pytest.mark.anyio
async def test_two_processes_on_one_file_agree_about_a_revoked_route(tmp_path: Path) -> None:
    a, b = SQLiteStore(tmp_path / "db"), SQLiteStore(tmp_path / "db")
    removed: list[str] = []

    async def on_removed(route_id: str) -> None:
        removed.append(route_id)

    async with anyio.create_task_group() as group:
        group.start_soon(b.watch, on_removed)
        await a.add_route(make_route())
        await until(lambda: b.route_by_token_hash(hash_token("token-acme")) == make_route())
        assert await a.delete_route("id-acme")
        await until(lambda: b.route_by_token_hash(hash_token("token-acme")) is None)
        group.cancel_scope.cancel()
    assert removed == ["id-acme"]
    a.close()
    b.close()

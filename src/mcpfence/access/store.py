"""Where token routes and API tokens live: a ``Store`` interface and its SQLite backend.

The proxy's hot path only ever reads an in-memory index (``route_by_token_hash``,
``api_tokens``); writes go to the database first and then replace the index, so a
restart rebuilds exactly what was committed. ``watch`` keeps the index current with
what other processes write (another ``mcpfence serve`` on the same SQLite file, or
every replica of a cluster on Redis: mcpfence.cluster.store), so a revoked route
stops answering everywhere within a second. Expired routes are absent from every
read at once; ``purge_expired`` deletes them for good.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

import anyio.to_thread

A = TypeVar("A")
R = TypeVar("R")


class StoreConflict(Exception):
    """A name (or token hash) is already taken."""


@dataclass(frozen=True)
class TokenRoute:
    """A route reached at ``/mcp/<token>``; only the token's SHA-256 is kept."""

    id: str
    name: str
    token_sha256: str
    upstream: str
    """The name of the config-file route whose upstream this route reuses."""
    methods: tuple[str, ...]
    tags: tuple[str, ...]
    expires_at: datetime | None
    require_api_token_auth: bool
    created_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class ApiToken:
    """A named client credential for ``require_api_token_auth`` routes; only its SHA-256 is kept."""

    name: str
    token_sha256: str
    created_at: datetime


RouteRemoved = Callable[[str], Awaitable[None]]
"""Told the id of a token route that is gone (revoked, expired), so its sessions end."""

# How often another process's writes to a shared SQLite file are looked for.
SQLITE_POLL_SECONDS = 0.25


def utcnow() -> datetime:
    """Now, timezone-aware: stored times are compared with it, never with naive ones."""
    return datetime.now(UTC)


class Store(Protocol):
    """Routes and API tokens; reads are synchronous and served from memory."""

    def routes(self) -> list[TokenRoute]: ...
    def route(self, route_id: str) -> TokenRoute | None: ...
    def route_by_token_hash(self, token_sha256: str) -> TokenRoute | None: ...
    def api_tokens(self) -> list[ApiToken]: ...
    async def add_route(self, route: TokenRoute) -> None: ...
    async def update_route(self, route: TokenRoute) -> bool: ...
    async def delete_route(self, route_id: str) -> bool: ...
    async def purge_expired(self) -> list[str]: ...
    async def add_api_token(self, token: ApiToken) -> None: ...
    async def delete_api_token(self, name: str) -> bool: ...
    async def load(self) -> None:
        """(Re)read everything stored; start-up calls it before serving."""
    async def watch(self, on_removed: RouteRemoved) -> None:
        """Forever: follow other processes' writes; report routes that disappear."""
    def close(self) -> None: ...


class IndexedStore:
    """The in-memory index every read is served from; replaced whole, never mutated,
    because readers on the event loop iterate it without a lock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._routes: dict[str, TokenRoute] = {}
        self._by_hash: dict[str, str] = {}
        self._tokens: dict[str, ApiToken] = {}

    def routes(self) -> list[TokenRoute]:
        now = self._clock()
        return [route for route in self._routes.values() if not route.expired(now)]

    def route(self, route_id: str) -> TokenRoute | None:
        return self._live(self._routes.get(route_id))

    def route_by_token_hash(self, token_sha256: str) -> TokenRoute | None:
        route_id = self._by_hash.get(token_sha256)
        return self._live(self._routes.get(route_id) if route_id else None)

    def api_tokens(self) -> list[ApiToken]:
        return list(self._tokens.values())

    def _live(self, route: TokenRoute | None) -> TokenRoute | None:
        return route if route is not None and not route.expired(self._clock()) else None

    def _expired_ids(self) -> list[str]:
        now = self._clock()
        return [route.id for route in self._routes.values() if route.expired(now)]

    def _index_routes(self, routes: dict[str, TokenRoute]) -> list[str]:
        """Install ``routes``; the ids that were indexed before and are gone now."""
        gone = [route_id for route_id in self._routes if route_id not in routes]
        self._routes = routes
        self._by_hash = {route.token_sha256: route.id for route in routes.values()}
        return gone

    def _index(self, routes: Iterable[TokenRoute], tokens: Iterable[ApiToken]) -> list[str]:
        """Install a whole snapshot (routes and tokens); the route ids that disappeared."""
        self._tokens = {token.name: token for token in tokens}
        return self._index_routes({route.id: route for route in routes})


# Append only: each entry upgrades the schema by one version and never changes.
MIGRATIONS: Sequence[Sequence[str]] = (
    (
        """CREATE TABLE routes (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            token_sha256 TEXT NOT NULL UNIQUE,
            upstream TEXT NOT NULL,
            methods TEXT NOT NULL,
            tags TEXT NOT NULL,
            expires_at TEXT,
            require_api_token_auth INTEGER NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE api_tokens (
            name TEXT PRIMARY KEY,
            token_sha256 TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        )""",
    ),
)

_ROUTE_COLUMNS = (
    "id, name, token_sha256, upstream, methods, tags, expires_at, require_api_token_auth, created_at"
)


class SQLiteStore(IndexedStore):
    """A :class:`Store` in one SQLite file; writes run in a worker thread.

    Several processes may share the file (``mcpfence serve`` twice on one host):
    :meth:`watch` polls SQLite's ``data_version``, which changes exactly when
    another connection commits, and reloads the index then.
    """

    def __init__(self, path: Path | str, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(clock)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._migrate()
        self._index(self._load_routes(), self._load_tokens())
        self._data_version = self._read_data_version()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0])

    # -- other processes' writes --

    async def load(self) -> None:
        """Loaded when opened; :meth:`watch` follows later commits."""

    async def watch(self, on_removed: RouteRemoved) -> None:
        while True:
            for route_id in await self._write(self._reload_if_changed, None):
                await on_removed(route_id)
            await anyio.sleep(SQLITE_POLL_SECONDS)

    def _read_data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def _reload_if_changed(self, _: None) -> list[str]:
        version = self._read_data_version()
        if version == self._data_version:
            return []
        self._data_version = version
        return self._index(self._load_routes(), self._load_tokens())

    # -- writes (database, then memory) --

    async def add_route(self, route: TokenRoute) -> None:
        await self._write(self._insert_route, route)

    async def update_route(self, route: TokenRoute) -> bool:
        return await self._write(self._replace_route, route)

    async def delete_route(self, route_id: str) -> bool:
        return bool(await self._write(self._delete_routes, [route_id]))

    async def purge_expired(self) -> list[str]:
        expired = self._expired_ids()
        return await self._write(self._delete_routes, expired) if expired else []

    async def add_api_token(self, token: ApiToken) -> None:
        await self._write(self._insert_token, token)

    async def delete_api_token(self, name: str) -> bool:
        return await self._write(self._delete_token, name)

    async def _write(self, operation: Callable[[A], R], argument: A) -> R:
        return await anyio.to_thread.run_sync(self._locked, operation, argument)

    def _locked(self, operation: Callable[[A], R], argument: A) -> R:
        with self._lock:
            return operation(argument)

    def _insert_route(self, route: TokenRoute) -> None:
        placeholders = ",".join("?" * len(_ROUTE_COLUMNS.split(",")))
        self._execute(f"INSERT INTO routes ({_ROUTE_COLUMNS}) VALUES ({placeholders})", _row(route))
        self._index_routes({**self._routes, route.id: route})

    def _replace_route(self, route: TokenRoute) -> bool:
        if route.id not in self._routes:
            return False
        row = _row(route)
        self._execute(
            "UPDATE routes SET name=?, token_sha256=?, upstream=?, methods=?, tags=?, "
            "expires_at=?, require_api_token_auth=?, created_at=? WHERE id=?",
            (*row[1:], row[0]),
        )
        self._index_routes({**self._routes, route.id: route})
        return True

    def _delete_routes(self, route_ids: list[str]) -> list[str]:
        present = [route_id for route_id in route_ids if route_id in self._routes]
        with self._transaction():
            self._db.executemany("DELETE FROM routes WHERE id=?", [(i,) for i in present])
        self._index_routes({k: v for k, v in self._routes.items() if k not in present})
        return present

    def _insert_token(self, token: ApiToken) -> None:
        self._execute(
            "INSERT INTO api_tokens (name, token_sha256, created_at) VALUES (?,?,?)",
            (token.name, token.token_sha256, token.created_at.isoformat()),
        )
        self._tokens = {**self._tokens, token.name: token}

    def _delete_token(self, name: str) -> bool:
        self._execute("DELETE FROM api_tokens WHERE name=?", (name,))
        present = name in self._tokens
        self._tokens = {k: v for k, v in self._tokens.items() if k != name}
        return present

    def _execute(self, sql: str, parameters: Sequence[object]) -> None:
        try:
            self._db.execute(sql, parameters)
        except sqlite3.IntegrityError as exc:
            raise StoreConflict(str(exc)) from None

    # -- schema and loading --

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; rolled back on error so the connection stays usable."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._lock, self._transaction():
            self._apply_migrations()

    def _apply_migrations(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            self._db.execute("INSERT INTO schema_version (version) VALUES (0)")
        current = int(row[0]) if row else 0
        if current > len(MIGRATIONS):
            raise RuntimeError(f"database schema {current} is newer than this mcpfence")
        for statements in MIGRATIONS[current:]:
            for statement in statements:
                self._db.execute(statement)
        self._db.execute("UPDATE schema_version SET version=?", (len(MIGRATIONS),))

    def _load_routes(self) -> list[TokenRoute]:
        rows = self._db.execute(f"SELECT {_ROUTE_COLUMNS} FROM routes ORDER BY created_at")
        return [
            TokenRoute(
                id=row[0],
                name=row[1],
                token_sha256=row[2],
                upstream=row[3],
                methods=tuple(json.loads(row[4])),
                tags=tuple(json.loads(row[5])),
                expires_at=datetime.fromisoformat(row[6]) if row[6] else None,
                require_api_token_auth=bool(row[7]),
                created_at=datetime.fromisoformat(row[8]),
            )
            for row in rows
        ]

    def _load_tokens(self) -> list[ApiToken]:
        rows = self._db.execute("SELECT name, token_sha256, created_at FROM api_tokens ORDER BY name")
        return [ApiToken(row[0], row[1], datetime.fromisoformat(row[2])) for row in rows]


def _row(route: TokenRoute) -> tuple[object, ...]:
    return (
        route.id,
        route.name,
        route.token_sha256,
        route.upstream,
        json.dumps(route.methods),
        json.dumps(route.tags),
        route.expires_at.isoformat() if route.expires_at else None,
        int(route.require_api_token_auth),
        route.created_at.isoformat(),
    )

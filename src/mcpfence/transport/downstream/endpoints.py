"""Every endpoint one configured route serves, whatever its upstream's transport.

| upstream        | ``{path}`` (Streamable HTTP)    | ``{path}/sse`` + ``{path}/messages`` (legacy) |
|-----------------|---------------------------------|-----------------------------------------------|
| streamable-http | relayed exchange by exchange    | bridged: mcpfence is the upstream's client    |
| sse             | hosted by mcpfence              | hosted by mcpfence                            |
| stdio           | hosted by mcpfence              | hosted by mcpfence                            |

Hosted sessions of both kinds share one table, so one shared child (or one
``shared`` upstream session) serves clients of either era.
"""

from __future__ import annotations

from pathlib import Path

from mcpfence.access.guard import AccessGuard
from mcpfence.config import RouteConfig
from mcpfence.pipeline import Pipeline
from mcpfence.transport.downstream.app import Route
from mcpfence.transport.downstream.hosted import HostedRoute
from mcpfence.transport.downstream.legacy_sse import LegacySseRoute
from mcpfence.transport.downstream.messages import ParamSchemas
from mcpfence.transport.downstream.opening import Opening
from mcpfence.transport.downstream.sessions import SessionTable
from mcpfence.transport.http import Request, Send
from mcpfence.transport.upstream.link import Link
from mcpfence.transport.upstream.links import upstream_link
from mcpfence.transport.upstream.pool import Upstream


class RouteEndpoints:
    """Dispatches between a route's Streamable HTTP endpoint and its legacy SSE pair."""

    serves_legacy_sse = True  # tells ProxyApp to send ``{path}/sse`` and ``{path}/messages`` here

    def __init__(self, path: str, main: Route, legacy: LegacySseRoute, table: SessionTable) -> None:
        self.path = path.rstrip("/") or "/"
        self.main = main
        self.legacy = legacy
        self.table = table

    async def handle(self, request: Request, send: Send) -> None:
        if (request.path.rstrip("/") or "/") == self.path:
            await self.main.handle(request, send)
        else:
            await self.legacy.handle(request, send)

    async def close(self) -> None:
        """Stop every hosted session, and with them the children they started."""
        await self.table.close()


def build_endpoints(
    route: RouteConfig,
    pipeline: Pipeline,
    max_body_bytes: int,
    base_dir: Path,
    upstream: Upstream | None,
    relay: Route | None,
    guard: AccessGuard | None = None,
    schemas: ParamSchemas | None = None,
) -> RouteEndpoints:
    """The endpoints of ``route``, each passing ``pipeline`` and ``guard``.

    ``upstream`` is the HTTP client of a URL upstream (None for stdio); ``relay``
    serves the route's path when the upstream speaks Streamable HTTP itself (and
    applies the guard itself).
    """
    config = route.upstream

    def link() -> Link:
        return upstream_link(route, upstream, base_dir)

    table = SessionTable(
        route.name,
        pipeline,
        link,
        config.timeout_seconds,
        shared=config.shared,
        max_sessions=route.limits.sessions,
        idle_seconds=route.limits.session_idle_seconds,
    )
    main = relay or HostedRoute(table, Opening(max_body_bytes, guard, schemas))
    legacy = LegacySseRoute(route.path, table, Opening(max_body_bytes, guard))
    return RouteEndpoints(route.path, main, legacy, table)

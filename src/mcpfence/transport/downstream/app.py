"""The ASGI application clients connect to: origin checks, then routing by path."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp

from mcpfence import jsonrpc
from mcpfence.transport.http import (
    JSON_HEADERS,
    Receive,
    Request,
    Scope,
    Send,
    send_jsonrpc_error,
    send_response,
)

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Last path segments of the legacy HTTP+SSE endpoints, served under a route's path.
LEGACY_LEAVES = frozenset({"sse", "messages"})
# Probes for load balancers and orchestrators, beside the routes (a route at the same path wins).
PROBES = frozenset({"/healthz", "/readyz"})


class Route(Protocol):
    """Whatever serves one configured path; it answers every request itself, errors included."""

    async def handle(self, request: Request, send: Send) -> None: ...


class OriginGuard:
    """DNS-rebinding protection: browser origins must be local or explicitly allowed.

    Requests without an ``Origin`` header (every non-browser client) pass.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(origin.rstrip("/") for origin in allowed)

    def allows(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` header may reach a route."""
        if origin is None or origin.rstrip("/") in self.allowed:
            return True
        return _hostname(origin) in LOCAL_HOSTS

    @staticmethod
    def refusal() -> jsonrpc.JsonRpcError:
        """The answer to a request from an origin that is not allowed."""
        return jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, "Origin not allowed", status=403)


class HostGuard:
    """DNS-rebinding protection for a proxy listening on loopback.

    A browser tricked by a rebound DNS name sends that name as ``Host``; a
    loopback listener only answers to loopback names (any port) and the
    configured host, as the MCP SDK's own servers do. A proxy listening on a
    public address is reached under names it cannot know, so it checks nothing.
    """

    def __init__(self, listen_host: str) -> None:
        self.enabled = listen_host.strip("[]") in LOCAL_HOSTS
        self.allowed = LOCAL_HOSTS | {listen_host.strip("[]").lower()}

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header may reach a route."""
        if not self.enabled:
            return True
        if not host:
            return False
        name = _hostname(f"//{host}")
        return name is not None and name in self.allowed


@lru_cache(maxsize=256)
def _hostname(url: str) -> str | None:
    """The host ``url`` names, or None when it names none or does not parse (``[::1``).

    Cached: clients send the same few ``Host`` and ``Origin`` values on every request."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
        return parts.hostname
    except ValueError:
        return None


class RebindingGuard:
    """ASGI middleware applying the proxy's Host and Origin rules to another listener
    (the admin API and ``/metrics``), answering refusals as ``{"error": ...}``."""

    def __init__(self, app: ASGIApp, hosts: HostGuard, origins: OriginGuard) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            refusal = None
            if not self.hosts.allows(headers.get("host")):
                refusal = JSONResponse({"error": "Host not allowed"}, status_code=421)
            elif not self.origins.allows(headers.get("origin")):
                refusal = JSONResponse({"error": "Origin not allowed"}, status_code=403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ProxyApp:
    """Dispatches each request to the route configured at its path."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        origins: OriginGuard,
        resolve: Callable[[str], Route | None] | None = None,
        lifespan: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
        hosts: HostGuard | None = None,
        readiness: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.routes = {path.rstrip("/") or "/": route for path, route in routes.items()}
        self.origins = origins
        # Routes not known at start-up (token routes): looked up per request, in memory.
        self._resolve = resolve
        self.hosts = hosts or HostGuard("0.0.0.0")
        self._startup = lifespan
        self._shutdown = shutdown
        # Why the proxy cannot serve yet (None: ready); asked by GET /readyz.
        self._readiness = readiness
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if not self.hosts.allows(request.headers.get("host")):
            error = jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, "Host not allowed", status=421)
            await send_jsonrpc_error(send, error)
            return
        path = request.path.rstrip("/") or "/"
        if path in PROBES and path not in self.routes:
            await self._probe(path, send)
            return
        route = self._find(path)
        if route is None:
            error = jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, "no route at this path", status=404)
            await send_jsonrpc_error(send, error)
            return
        if not self.origins.allows(request.headers.get("origin")):
            await send_jsonrpc_error(send, self.origins.refusal())
            return
        await route.handle(request, send)

    async def _probe(self, path: str, send: Send) -> None:
        """``/healthz``: the process answers. ``/readyz``: started, and shared state reachable."""
        reason = None
        if path == "/readyz":
            reason = "starting" if not self._started else None
            if reason is None and self._readiness is not None:
                reason = await self._readiness()
        status = "ok" if reason is None else "unavailable"
        # The pid tells workers apart (``mcpfence serve --workers N``).
        body = json.dumps({"status": status, "reason": reason, "pid": os.getpid()})
        await send_response(send, 200 if reason is None else 503, body.encode(), JSON_HEADERS)

    def _find(self, path: str) -> Route | None:
        """The route at ``path``, or the route whose legacy SSE endpoint ``path`` is."""
        route = self.routes.get(path)
        if route is None:
            parent, _, leaf = path.rpartition("/")
            legacy = self.routes.get(parent or "/") if leaf in LEGACY_LEAVES else None
            route = legacy if getattr(legacy, "serves_legacy_sse", False) else None
        if route is None and self._resolve is not None:
            route = self._resolve(path)
        return route

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._startup is not None:
                        await self._startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                self._started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._shutdown is not None:
                    await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

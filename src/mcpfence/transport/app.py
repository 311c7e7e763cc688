"""The ASGI application clients connect to: origin checks, then routing by path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol
from urllib.parse import urlsplit

from mcpfence import jsonrpc
from mcpfence.transport.http import Receive, Request, Scope, Send, send_jsonrpc_error

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Route(Protocol):
    async def handle(self, request: Request, send: Send) -> None: ...


class OriginGuard:
    """DNS-rebinding protection: browser origins must be local or explicitly allowed.

    Requests without an ``Origin`` header (every non-browser client) pass.
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(origin.rstrip("/") for origin in allowed)

    def allows(self, origin: str | None) -> bool:
        if origin is None or origin.rstrip("/") in self.allowed:
            return True
        return urlsplit(origin).hostname in LOCAL_HOSTS


class ProxyApp:
    """Dispatches each request to the route configured at its path."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        origins: OriginGuard,
        lifespan: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.routes = {path.rstrip("/") or "/": route for path, route in routes.items()}
        self.origins = origins
        self._startup = lifespan
        self._shutdown = shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        route = self.routes.get(request.path.rstrip("/") or "/")
        if route is None:
            error = jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, f"no route at {request.path}", status=404)
            await send_jsonrpc_error(send, error)
            return
        if not self.origins.allows(request.headers.get("origin")):
            error = jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, "Origin not allowed", status=403)
            await send_jsonrpc_error(send, error)
            return
        await route.handle(request, send)

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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._shutdown is not None:
                    await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

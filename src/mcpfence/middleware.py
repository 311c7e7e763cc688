"""mcpfence as ASGI middleware: the same checks in front of an MCP server in this process.

Many MCP servers are ASGI apps themselves (the official SDK's
``streamable_http_app()``, FastMCP's ``http_app()``). Wrapping one puts
mcpfence's relay between the client and the app with no network hop: every
MCP request at the app's MCP path is parsed, checked, forwarded to the app by
calling it, and its answer checked, as ``mcpfence serve`` would, with the same
answers, spans and decision records. Everything else (other paths, websockets)
goes to the app untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from starlette.types import ASGIApp
from starlette.types import Message as ASGIMessage

from mcpfence.config import Config, UpstreamConfig, load_config
from mcpfence.listing import SelfListing
from mcpfence.server import Proxy
from mcpfence.transport.downstream.app import OriginGuard
from mcpfence.transport.http import Receive, Request, Scope, Send, send_jsonrpc_error
from mcpfence.transport.upstream.asgi import CLIENT_SCOPE, AsgiUpstream
from mcpfence.transport.upstream.link import Link
from mcpfence.transport.upstream.streamable_http import StreamableHttpLink

StrPath = str | PathLike[str]
_TIMEOUT_SECONDS: float = UpstreamConfig.model_fields["timeout_seconds"].default


class PolicyMiddleware:
    """Wrap ``app`` so its MCP endpoint at ``path`` answers only what the policies allow.

    ``policies`` are policy files or folders; ``config`` is an mcpfence config file
    whose ``policies`` (when ``policies`` is empty), ``decision_log``, ``telemetry``,
    ``tags`` and ``server.max_body_bytes``/``allowed_origins`` apply (its routes and
    listeners do not). Decisions and spans name the route ``route``.

    Put authentication in front of this middleware: like ``mcpfence serve``, it never
    passes the client's ``Authorization`` or cookies on to the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        policies: Sequence[StrPath] = (),
        route: str = "mcp",
        config: StrPath | None = None,
        *,
        path: str = "/mcp",
    ) -> None:
        self.app = app
        self.path = path.rstrip("/") or "/"
        settings = _settings(policies, config)
        self.proxy = Proxy(settings)
        self.origins = OriginGuard(settings.server.allowed_origins)
        upstream = AsgiUpstream(app, f"app at {self.path}", _TIMEOUT_SECONDS)

        def connect(stateless: str | None) -> Link:
            """The argument check lists the app's tools itself, as from a remote upstream."""
            return StreamableHttpLink(upstream, protocol_version=stateless, listen=False)

        listing = SelfListing(route, self.proxy.catalog, connect, _TIMEOUT_SECONDS)
        self.relay = self.proxy.relay(route, upstream, listing=listing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http" or _route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if not self.origins.allows(request.headers.get("origin")):
            await send_jsonrpc_error(send, self.origins.refusal())
            return
        token = CLIENT_SCOPE.set(scope)
        try:
            await self.relay.handle(request, send)
        finally:
            CLIENT_SCOPE.reset(token)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, with mcpfence's (policy reloads, log and exporter flush) around it."""

        async def sending(message: ASGIMessage) -> None:
            if message["type"].startswith("lifespan.shutdown."):
                await self.proxy.close()
            await send(message)

        async def received() -> ASGIMessage:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.proxy.start()
            return message

        await self.app(scope, received, sending)


def _settings(policies: Sequence[StrPath], config: StrPath | None) -> Config:
    """The config file's settings that apply in-process (routes and listeners do not)."""
    base = load_config(Path(config)) if config is not None else Config()
    paths = tuple(str(Path(p).resolve()) for p in policies) or base.policies
    server = base.server.model_copy(update={"admin_port": None})
    return base.model_copy(update={"policies": paths, "server": server, "routes": ()})


def _route_path(scope: Scope) -> str:
    """The request's path inside the app (a mounting app's ``root_path`` removed)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.rstrip("/") or "/"

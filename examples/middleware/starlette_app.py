"""A Starlette app with an official-SDK MCP server mounted in it, fenced by mcpfence in-process.

    uvicorn examples.middleware.starlette_app:app --port 8000    # MCP at http://127.0.0.1:8000/billing/mcp

``PolicyMiddleware`` sits in Starlette's middleware stack, so the app's lifespan
(which runs the SDK's session manager) passes through it. Only MCP requests at
``/billing/mcp`` are checked; ``/healthz`` is the app's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from examples.middleware.billing import POLICIES, refund
from mcpfence import PolicyMiddleware

server = MCPServer("billing")
server.tool()(refund)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with server.session_manager.run():  # a mounted app's own lifespan does not run
        yield


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[Route("/healthz", healthz), Mount("/billing", app=server.streamable_http_app())],
    middleware=[Middleware(PolicyMiddleware, policies=[POLICIES], route="billing", path="/billing/mcp")],
    lifespan=lifespan,
)

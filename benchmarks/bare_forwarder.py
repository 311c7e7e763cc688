"""The baseline: a forwarder with a pooled upstream client and no checks at all.

It is the floor for what any Python proxy can cost on this machine, so mcpfence's overhead
is judged against it as well as against nginx. One server and one upstream client are
picked on the command line, which is how ``bench_clients.py`` compares them:

- server ``asgi`` (raw ASGI under uvicorn with uvloop and httptools), ``starlette`` (the
  same under Starlette routing), ``granian`` (the raw ASGI app under granian, a Rust
  server, on uvloop) or ``aiohttp`` (aiohttp.web on uvloop);
- client ``aiohttp``, ``httpx2``, ``httpx`` (0.28) or ``http1`` (mcpfence's own pool,
  ``mcpfence.transport.upstream.http1``).

Run: ``python -m benchmarks.bare_forwarder --port 8000 --upstream URL [--server S] [--client C]``
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import aiohttp
import httpx
import httpx2
import uvloop
from aiohttp import web
from granian import Granian
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks.harness import read_body, run_uvicorn
from mcpfence.transport.upstream.http1 import Pool

FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "mcp-protocol-version", "mcp-session-id")
FORWARDED_RESPONSE_HEADERS = ("content-type", "mcp-session-id")
POOL_SIZE = 64


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Upstream(Protocol):
    async def post(self, body: bytes, headers: Mapping[str, str]) -> Reply: ...


def _pick(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: headers[name] for name in names if name in headers}


class AiohttpUpstream:
    """aiohttp's ClientSession, created on first use because it needs the running loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=POOL_SIZE),
                timeout=aiohttp.ClientTimeout(total=30),
            )
        async with self._session.post(self.url, data=body, headers=headers) as response:
            payload = await response.read()
            return Reply(response.status,
                         _pick(response.headers, FORWARDED_RESPONSE_HEADERS), payload)


class HttpxUpstream:
    """httpx 0.28 or httpx2, which share one API; ``module`` says which."""

    def __init__(self, url: str, module: ModuleType) -> None:
        self.url = url
        self._client = module.AsyncClient(
            limits=module.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
            timeout=30,
        )

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        response = await self._client.post(self.url, content=body, headers=dict(headers))
        return Reply(response.status_code,
                     _pick(response.headers, FORWARDED_RESPONSE_HEADERS), response.content)


class Http1Upstream:
    """mcpfence's own keep-alive pool over asyncio protocols and httptools."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = Pool(url, POOL_SIZE, connect_timeout=10)

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        response = await self._pool.request("POST", self.url, headers, body)
        try:
            payload = await response.read()
        finally:
            response.release()
        return Reply(response.status, _pick(response.headers, FORWARDED_RESPONSE_HEADERS), payload)


def make_upstream(client: str, url: str) -> Upstream:
    if client == "aiohttp":
        return AiohttpUpstream(url)
    if client == "http1":
        return Http1Upstream(url)
    return HttpxUpstream(url, httpx2 if client == "httpx2" else httpx)


def asgi_app(upstream: Upstream) -> ASGIApp:
    """Raw ASGI: uvicorn's parsed request goes straight to the upstream client."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        reply = await upstream.post(body, _pick(headers, FORWARDED_REQUEST_HEADERS))
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()]})
        await send({"type": "http.response.body", "body": reply.body})

    return app


def starlette_app(upstream: Upstream) -> ASGIApp:
    """The same forwarder behind Starlette's routing and Request/Response objects."""

    async def forward(request: Request) -> Response:
        reply = await upstream.post(await request.body(),
                                    _pick(request.headers, FORWARDED_REQUEST_HEADERS))
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["POST"])])


def aiohttp_app(upstream: Upstream) -> web.Application:
    async def forward(request: web.Request) -> web.Response:
        reply = await upstream.post(await request.read(),
                                    _pick(request.headers, FORWARDED_REQUEST_HEADERS))
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    app = web.Application()
    app.router.add_post("/{path:.*}", forward)
    return app


def from_environment() -> ASGIApp:
    """The raw ASGI forwarder for granian, which imports its app by name in a worker."""
    return asgi_app(make_upstream(os.environ["BARE_CLIENT"], os.environ["BARE_UPSTREAM"]))


def serve(port: int, client: str, url: str, server: str) -> None:
    if server == "granian":
        os.environ.update(BARE_CLIENT=client, BARE_UPSTREAM=url)
        Granian("benchmarks.bare_forwarder:from_environment", factory=True, interface="asgi",
                loop="uvloop", http="1", port=port, websockets=False, log_level="warning").serve()
        return
    upstream = make_upstream(client, url)
    if server == "aiohttp":
        uvloop.install()
        web.run_app(aiohttp_app(upstream), host="127.0.0.1", port=port,
                    access_log=None, print=None)
        return
    app = asgi_app(upstream) if server == "asgi" else starlette_app(upstream)
    run_uvicorn(app, port)


def main() -> None:
    parser = argparse.ArgumentParser(description="Forward MCP requests with no checks.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream MCP URL")
    parser.add_argument("--server", choices=["asgi", "starlette", "granian", "aiohttp"], default="asgi")
    parser.add_argument("--client", choices=["aiohttp", "httpx2", "httpx", "http1"], default="aiohttp")
    args = parser.parse_args()
    serve(args.port, args.client, args.upstream, args.server)


if __name__ == "__main__":
    main()

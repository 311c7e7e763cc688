"""Command line and serving shared by the demo upstreams, so each vendor module only holds its API."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def upstream_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """The options every demo upstream takes: where to listen, or stdio instead."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=default_port, help="TCP port (default %(default)s)")
    parser.add_argument("--stdio", action="store_true", help="speak MCP over stdin/stdout instead of HTTP")
    parser.add_argument("--request-budget", type=int, help="HTTP requests allowed per window (default: any)")
    parser.add_argument("--budget-window", type=float, default=60.0, help="budget window in seconds")
    return parser


async def report_progress(ctx: Context[Any, Any], done: int, total: int, every: int = 100) -> None:
    """Report bulk progress every ``every`` items and at the end, so proxies see streamed notifications."""
    if done % every == 0 or done == total:
        await ctx.report_progress(done, total)


def http_app(server: MCPServer[Any], host: str = "127.0.0.1") -> ASGIApp:
    """The server's Streamable HTTP app at ``/mcp``.

    ``host`` matters: on loopback the SDK turns on DNS-rebinding protection, as a
    real local MCP server should.
    """
    return server.streamable_http_app(streamable_http_path="/mcp", host=host)


def run(server: MCPServer[Any], args: argparse.Namespace, over_budget: bytes) -> None:
    """Serve ``server`` as ``args`` ask: stdio, or Streamable HTTP on host:port, behind a
    :class:`RequestBudget` (answering ``over_budget``, the vendor's 429 body) if one is set."""
    if args.stdio:
        server.run("stdio")
        return
    app = http_app(server, args.host)
    if args.request_budget is not None:
        app = RequestBudget(app, args.request_budget, args.budget_window, body=over_budget)
    print(f"{server.name} listening on http://{args.host}:{args.port}/mcp", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


class RequestBudget:
    """ASGI middleware: at most ``limit`` HTTP requests per ``window_seconds``, as a vendor API allows.

    Every response carries ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (epoch
    seconds); over budget the answer is 429 with ``Retry-After``, before the MCP app sees it.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        body: bytes = b'{"error": "rate limit exceeded"}',
    ) -> None:
        self.app = app
        self.body = body
        self.limit = limit
        self.window_seconds = window_seconds
        self.clock = clock
        self.used = 0
        self.window_end = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = self.clock()
        if now >= self.window_end:
            self.window_end, self.used = now + self.window_seconds, 0
        self.used += 1
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(self.limit - self.used, 0)).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.window_end)).encode()),
        ]
        if self.used > self.limit:
            retry_after = str(max(math.ceil(self.window_end - now), 1)).encode()
            body = self.body
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        *headers,
                        (b"retry-after", retry_after),
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

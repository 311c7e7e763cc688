"""Command line and serving shared by the demo upstreams, so each vendor module only holds its API."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.types import ASGIApp

AppWrapper = Callable[[ASGIApp], ASGIApp]


def upstream_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """The options every demo upstream takes: where to listen, or stdio instead."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=default_port, help="TCP port (default %(default)s)")
    parser.add_argument("--stdio", action="store_true", help="speak MCP over stdin/stdout instead of HTTP")
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


def run(server: MCPServer[Any], args: argparse.Namespace, wrap: AppWrapper | None = None) -> None:
    """Serve ``server`` as ``args`` ask: stdio, or Streamable HTTP (optionally wrapped) on host:port."""
    if args.stdio:
        server.run("stdio")
        return
    app = http_app(server, args.host)
    if wrap is not None:
        app = wrap(app)
    print(f"{server.name} listening on http://{args.host}:{args.port}/mcp", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")

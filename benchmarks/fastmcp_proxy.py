"""FastMCP's own proxy (``create_proxy``) in front of the benchmark upstream, for comparison.

Stateless with JSON answers, so wrk's single ``tools/call`` needs no session, the way
the other targets take it.

Run: ``python -m benchmarks.fastmcp_proxy --port 8000 --upstream URL``
"""

from __future__ import annotations

import argparse

from fastmcp.server import create_proxy

from benchmarks.harness import run_uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve FastMCP's proxy to an MCP upstream.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    proxy = create_proxy(args.upstream, name="fastmcp-proxy")
    app = proxy.http_app(path="/mcp", stateless_http=True, json_response=True)
    run_uvicorn(app, args.port, lifespan="on")


if __name__ == "__main__":
    main()

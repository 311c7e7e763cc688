"""The fastest honest MCP Streamable HTTP upstream for ``tools/call``.

Stateless, JSON responses only: it parses every request and answers ``initialize``,
``tools/list`` and ``tools/call`` with valid JSON-RPC, so a proxy in front of it does all
its real work while the upstream itself costs as little as possible.

Raw ASGI under uvicorn (uvloop, httptools), because it measured faster here than
aiohttp.web: ~31,000 vs ~18,000 req/s at 16 connections, p50 0.10 vs 0.13 ms at one.

Run: ``python -m benchmarks.fast_upstream --port 9000``
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from benchmarks.harness import TOOL, TOOL_RESULT_TEXT, read_body, run_uvicorn

_TOOLS = {"tools": [{
    "name": TOOL,
    "description": "Send an email (benchmark stub: does nothing).",
    "inputSchema": {"type": "object", "properties": {
        "to": {"type": "string"}, "subject": {"type": "string"},
        "body": {"type": "string"}, "priority": {"type": "integer"},
    }, "required": ["to", "subject"]},
    "annotations": {"destructiveHint": False},
}]}
_CALL_RESULT = {"content": [{"type": "text", "text": TOOL_RESULT_TEXT}], "isError": False}
_JSON = [(b"content-type", b"application/json")]


def _result_for(message: dict[str, Any]) -> dict[str, Any]:
    method = message.get("method")
    if method == "tools/call":
        return {"result": _CALL_RESULT}
    if method == "tools/list":
        return {"result": _TOOLS}
    if method == "initialize":
        version = message.get("params", {}).get("protocolVersion", "2025-11-25")
        return {"result": {"protocolVersion": version, "capabilities": {"tools": {}},
                           "serverInfo": {"name": "fast-upstream", "version": "1"}}}
    return {"error": {"code": -32601, "message": f"method not found: {method}"}}


def answer(method: str, body: bytes) -> tuple[int, bytes]:
    """HTTP status and body for one request."""
    if method != "POST":
        return 405, b""
    try:
        message = json.loads(body)
    except ValueError:
        return 400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}'
    if "id" not in message:
        return 202, b""
    reply = {"jsonrpc": "2.0", "id": message["id"], **_result_for(message)}
    return 200, json.dumps(reply, separators=(",", ":")).encode()


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI: no framework between uvicorn's httptools parser and ``answer``."""
    status, payload = answer(scope["method"], await read_body(receive))
    await send({"type": "http.response.start", "status": status,
                "headers": _JSON if payload else []})
    await send({"type": "http.response.body", "body": payload})


def serve(port: int) -> None:
    run_uvicorn(asgi_app, port)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the benchmark MCP upstream.")
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()

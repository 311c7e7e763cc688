"""The fastest honest MCP Streamable HTTP upstream for ``tools/call``.

Stateless, JSON responses only: it parses every request and answers ``initialize``,
``tools/list`` and ``tools/call`` with valid JSON-RPC, so a proxy in front of it does all
its real work while the upstream itself costs as little as possible.

Raw ASGI under uvicorn (uvloop, httptools), because it measured faster here than
aiohttp.web: ~31,000 vs ~18,000 req/s at 16 connections, p50 0.10 vs 0.13 ms at one.

``--middleware POLICIES`` serves the same app wrapped in-process by mcpfence's
``PolicyMiddleware`` with that policy pack: the middleware row, next to ``direct``.

Run: ``python -m benchmarks.fast_upstream --port 9000 [--middleware POLICIES]``
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from benchmarks.harness import SSE_TOOL, TOOL, TOOL_RESULT_TEXT, UNMATCHED_TOOL, read_body, run_uvicorn

_SEND_SCHEMA = {"type": "object", "properties": {
    "to": {"type": "string"}, "subject": {"type": "string"},
    "body": {"type": "string"}, "priority": {"type": "integer"},
}, "required": ["to", "subject"]}
# Every tool the benchmark calls is listed: mcpfence refuses calls to tools whose
# inputSchema it does not know, and a refusal measured as a call would flatter it.
_TOOLS = {"tools": [
    {"name": TOOL, "description": "Send an email (benchmark stub: does nothing).",
     "inputSchema": _SEND_SCHEMA, "annotations": {"destructiveHint": False}},
    {"name": SSE_TOOL, "description": "The same, answered as an event stream.",
     "inputSchema": _SEND_SCHEMA, "annotations": {"destructiveHint": False}},
    {"name": UNMATCHED_TOOL, "description": "Read the status (no policy covers it).",
     "inputSchema": {"type": "object", "properties": {}}, "annotations": {"readOnlyHint": True}},
]}
_CALL_RESULT = {"content": [{"type": "text", "text": TOOL_RESULT_TEXT}], "isError": False}
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream")]


def _result_for(message: dict[str, Any]) -> dict[str, Any]:
    method = message.get("method")
    if method == "tools/call":
        return {"result": _CALL_RESULT}
    if method == "ping":
        return {"result": {}}
    if method == "tools/list":
        return {"result": _TOOLS}
    if method == "initialize":
        version = message.get("params", {}).get("protocolVersion", "2025-11-25")
        return {"result": {"protocolVersion": version, "capabilities": {"tools": {}},
                           "serverInfo": {"name": "fast-upstream", "version": "1"}}}
    return {"error": {"code": -32601, "message": f"method not found: {method}"}}


def answer(method: str, body: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """HTTP status, body and headers for one request; ``SSE_TOOL`` is answered as a stream."""
    if method != "POST":
        return 405, b"", []
    try:
        message = json.loads(body)
    except ValueError:
        return 400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}', _JSON
    if "id" not in message:
        return 202, b"", []
    reply = json.dumps({"jsonrpc": "2.0", "id": message["id"], **_result_for(message)},
                       separators=(",", ":")).encode()
    if message.get("params", {}).get("name") == SSE_TOOL:
        return 200, b"event: message\ndata: " + reply + b"\n\n", _SSE
    return 200, reply, _JSON


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Raw ASGI: no framework between uvicorn's httptools parser and ``answer``."""
    status, payload, headers = answer(scope["method"], await read_body(receive))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the benchmark MCP upstream.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--middleware", metavar="POLICIES",
                        help="wrap the app in mcpfence's PolicyMiddleware with these policies")
    args = parser.parse_args()
    if args.middleware is None:
        run_uvicorn(asgi_app, args.port)
        return
    from mcpfence import PolicyMiddleware

    run_uvicorn(PolicyMiddleware(asgi_app, policies=[args.middleware], route="bench"), args.port)


if __name__ == "__main__":
    main()

"""mcpfence's own work per call, without sockets: the middleware around the benchmark app.

Drives ``PolicyMiddleware(fast_upstream.asgi_app)`` with the benchmark call in a loop, in
one process, and prints CPU µs per call (best of 5) with the policy pack, without it, and
for the app alone. With no network and no other process involved it is far steadier on a
shared machine than wrk, so it is how each hot-path change was judged before wrk confirmed it.

Run: ``.venv/bin/python -m benchmarks.bench_inprocess [--calls N]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import uvloop

from benchmarks.fast_upstream import asgi_app
from benchmarks.harness import BENCH_DIR, BODY, HEADERS, PING_BODY, UNMATCHED_BODY
from mcpfence import PolicyMiddleware

SCOPE_HEADERS = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()] + [
    (b"host", b"127.0.0.1:8000"), (b"content-length", str(len(BODY)).encode())]


async def call(app: Any, body: bytes) -> int:
    """One POST to ``/mcp`` through ``app``; the response status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
             "root_path": "", "headers": SCOPE_HEADERS, "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000)}
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def per_call_us(app: Any, body: bytes, calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(calls):
            if await call(app, body) != 200:
                raise RuntimeError("the call failed")
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best


async def measure(calls: int) -> list[tuple[str, float]]:
    pack = PolicyMiddleware(asgi_app, policies=[BENCH_DIR / "policies.yaml"], route="bench")
    bare = PolicyMiddleware(asgi_app, route="bench")
    await per_call_us(pack, BODY, calls // 10)  # warm-up
    return [
        ("app alone (fast_upstream)", await per_call_us(asgi_app, BODY, calls)),
        ("middleware, no policies", await per_call_us(bare, BODY, calls)),
        ("middleware, 5 policies x 3 expressions", await per_call_us(pack, BODY, calls)),
        ("middleware + pack: tools/call no policy matches", await per_call_us(pack, UNMATCHED_BODY, calls)),
        ("middleware + pack: ping", await per_call_us(pack, PING_BODY, calls)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="mcpfence's own CPU per call, in-process.")
    parser.add_argument("--calls", type=int, default=3000)
    rows = uvloop.run(measure(parser.parse_args().calls))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value:7.1f} µs CPU/call")


if __name__ == "__main__":
    main()

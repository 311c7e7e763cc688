"""Which upstream client and which server should a Python MCP proxy use? Measured.

Every row is ``bare_forwarder.py`` in front of the same fast upstream, changing one part:
the upstream HTTP client (aiohttp, httpx2, httpx 0.28, mcpfence's own ``http1`` pool) under
uvicorn's raw ASGI, then the server side (raw ASGI under uvicorn or granian, Starlette under
uvicorn, aiohttp.web). Writes ``results/clients.md``.

Run: ``python -m benchmarks.bench_clients [--duration SECONDS]``
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from benchmarks.harness import (
    bare_forwarder,
    conditions,
    fast_upstream,
    markdown_table,
    measure_all,
    write_result,
)

VARIANTS = [  # (server, client)
    ("asgi", "aiohttp"),
    ("asgi", "httpx2"),
    ("asgi", "httpx"),
    ("asgi", "http1"),
    ("granian", "aiohttp"),
    ("granian", "http1"),
    ("starlette", "aiohttp"),
    ("aiohttp", "aiohttp"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description="Compare forwarder clients and servers.")
    parser.add_argument("--duration", type=float, default=9.0,
                        help="seconds of c=16 per target, split over 3 rounds (c=1: half)")
    args = parser.parse_args()
    header = conditions()
    with ExitStack() as stack:
        direct = stack.enter_context(fast_upstream())
        targets = {"direct": direct}
        for server, client in VARIANTS:
            forwarder = stack.enter_context(bare_forwarder(direct.url, server, client))
            targets[f"server {server} + client {client}"] = forwarder
        table = markdown_table(measure_all(targets, args.duration))
    print(f"{header}\n\n{table}")
    write_result("clients.md", f"{header}\n\n{table}")


if __name__ == "__main__":
    main()

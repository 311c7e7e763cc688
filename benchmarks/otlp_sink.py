"""A collector stand-in that accepts OTLP/HTTP exports and throws them away.

With it, ``mcpfence-policies-traced`` pays for everything tracing costs in the proxy
(recording spans, batching, protobuf encoding, the POSTs) without a real collector's
own work landing on the same two CPUs. An empty ``200`` body is a valid, empty
``Export*ServiceResponse``: every span accepted.

Run: ``python -m benchmarks.otlp_sink --port 4318``
"""

from __future__ import annotations

import argparse

from starlette.types import Receive, Scope, Send

from benchmarks.harness import read_body, run_uvicorn

EXPORT_PATHS = frozenset({"/v1/traces", "/v1/metrics"})


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Drain the export and answer 200; anything else is 404."""
    await read_body(receive)
    accepted = scope["method"] == "POST" and scope["path"] in EXPORT_PATHS
    headers = [(b"content-type", b"application/x-protobuf")] if accepted else []
    await send({"type": "http.response.start", "status": 200 if accepted else 404,
                "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description="Accept and discard OTLP/HTTP exports.")
    parser.add_argument("--port", type=int, required=True)
    run_uvicorn(asgi_app, parser.parse_args().port)


if __name__ == "__main__":
    main()

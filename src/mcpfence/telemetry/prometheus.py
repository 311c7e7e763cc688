"""The Prometheus scrape endpoint, for users without an OpenTelemetry Collector.

A Starlette app rather than ``prometheus_client.make_asgi_app``: it must survive a
lifespan scope when served on its own, and collection (which runs the metric
reader) happens in a worker thread instead of on the event loop.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# The classic text format, which ``generate_latest`` writes and every Prometheus reads.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def metrics_app(registry: CollectorRegistry) -> Starlette:
    """An app answering ``GET`` on any path with the text format.

    Serve it with ``Route("/metrics", app)``: a ``Mount`` would answer ``/metrics``
    with a redirect to ``/metrics/``.
    """

    async def scrape(request: Request) -> Response:
        body: bytes = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=TEXT_FORMAT)

    return Starlette(routes=[Route("/{path:path}", scrape, methods=["GET"])])

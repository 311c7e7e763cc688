"""Assembles a running proxy from a config: upstreams, pipelines, routes, listener."""

from __future__ import annotations

import logging

import uvicorn

from mcpfence.config import Config, RouteConfig
from mcpfence.pipeline import Addon, Pipeline
from mcpfence.transport.app import OriginGuard, ProxyApp
from mcpfence.transport.streamable_http import StreamableHttpRoute
from mcpfence.transport.upstream import Upstream

log = logging.getLogger("mcpfence")


class Proxy:
    """Everything one ``mcpfence serve`` runs, built from its config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.upstreams: list[Upstream] = []
        routes = {route.path: self._route(route) for route in config.routes}
        self.app = ProxyApp(
            routes, OriginGuard(config.server.allowed_origins), shutdown=self.close
        )

    def _route(self, route: RouteConfig) -> StreamableHttpRoute:
        upstream_config = route.upstream
        if upstream_config.url is None:
            raise ValueError(f"route {route.name}: only HTTP upstreams are supported so far")
        upstream = Upstream(upstream_config.url, upstream_config.headers, upstream_config.timeout_seconds)
        self.upstreams.append(upstream)
        return StreamableHttpRoute(
            route.name, upstream, Pipeline(self._addons(route)), self.config.server.max_body_bytes
        )

    def _addons(self, route: RouteConfig) -> list[Addon]:
        return []

    async def close(self) -> None:
        for upstream in self.upstreams:
            await upstream.close()


def serve(config: Config) -> None:
    """Run the proxy until interrupted (SIGINT/SIGTERM)."""
    proxy = Proxy(config)
    for route in config.routes:
        target = route.upstream.url or " ".join(route.upstream.command or ())
        log.info("route %s: http://%s:%d%s -> %s", route.name, config.server.host,
                 config.server.port, route.path, target)
    uvicorn.run(
        proxy.app,
        host=config.server.host,
        port=config.server.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )

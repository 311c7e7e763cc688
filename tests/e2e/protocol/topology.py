"""What runs where in the protocol suite: upstream variants, the proxy's routes, targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.e2e.protocol.upstream import Upstream

# Upstream variants: name -> run_upstream options. The name is also the route's name.
VARIANTS: Mapping[str, Mapping[str, bool]] = {
    "sse": {},
    "json": {"json_response": True},
    "stateless": {"stateless": True},
    "stateless-json": {"json_response": True, "stateless": True},
    "stateless-lines": {"stateless": True, "lines": True},
    "resumable": {"resumable": True},
}
UPSTREAM_KEY_VAR = "PROTOCOL_UPSTREAM_KEY"
UPSTREAM_KEY = "upstream-secret-from-env"
ALLOWED_ORIGIN = "https://app.example.com"
MAX_BODY_BYTES = 64 * 1024
# The "impatient" route gives its upstream less time than a slow tool takes.
IMPATIENT_TIMEOUT_SECONDS = 1


def route_path(name: str) -> str:
    return f"/{name}/mcp"


def _route(name: str, url: str, **upstream: Any) -> dict[str, Any]:
    return {"name": name, "path": route_path(name), "upstream": {"url": url, **upstream}}


def proxy_config(upstreams: Mapping[str, Upstream], flaky_port: int) -> dict[str, Any]:
    """mcpfence's config: a route per variant, one with a short timeout, one to a dead port."""
    key_header = {"X-Upstream-Key": "${" + UPSTREAM_KEY_VAR + "}"}
    routes = [_route(name, upstream.url, headers=key_header) for name, upstream in upstreams.items()]
    routes.append(
        _route("impatient", upstreams["stateless-json"].url, timeout_seconds=IMPATIENT_TIMEOUT_SECONDS)
    )
    routes.append(_route("flaky", f"http://127.0.0.1:{flaky_port}/mcp"))
    return {
        "server": {"max_body_bytes": MAX_BODY_BYTES, "allowed_origins": [ALLOWED_ORIGIN]},
        "routes": routes,
    }


@dataclass(frozen=True)
class Target:
    """Where a client connects for each upstream variant, in one mode (direct or proxied)."""

    mode: str
    urls: Mapping[str, str]
    upstreams: Mapping[str, Upstream]

    def url(self, variant: str = "sse") -> str:
        return self.urls[variant]

    def upstream(self, variant: str = "sse") -> Upstream:
        return self.upstreams[variant]

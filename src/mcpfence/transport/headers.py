"""Which HTTP headers cross mcpfence, in each direction.

Upstream, an allowlist: only what MCP needs, plus the route's configured
``upstream.headers``. The client's ``Authorization`` and cookies never pass (MCP
forbids token passthrough; upstream credentials come from the config alone).
Downstream, everything but hop-by-hop headers and framing that we recompute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

# Lower-case names of client request headers an MCP upstream needs.
FORWARDED_REQUEST_HEADERS: Final = frozenset(
    {
        "accept",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
        "traceparent",
        "tracestate",
        "user-agent",
    }
)
PARAM_HEADER_PREFIX: Final = "mcp-param-"

# Response headers that describe one hop, or a body framing we redo ourselves.
DROPPED_RESPONSE_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "date",
        "server",
    }
)


def upstream_request_headers(
    client_headers: Mapping[str, str], configured: Mapping[str, str]
) -> dict[str, str]:
    """Headers for the upstream request: allowlisted client ones, then the route's own."""
    headers = {
        name: value
        for name, value in client_headers.items()
        if name in FORWARDED_REQUEST_HEADERS or name.startswith(PARAM_HEADER_PREFIX)
    }
    headers.update(configured)
    return headers


def downstream_response_headers(upstream: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Upstream response headers as ASGI raw headers, minus the hop-by-hop ones."""
    raw: list[tuple[bytes, bytes]] = []
    for name, value in upstream:
        lower = name.lower()
        if lower not in DROPPED_RESPONSE_HEADERS:
            raw.append((lower.encode("latin-1"), value.encode("latin-1")))
    return raw

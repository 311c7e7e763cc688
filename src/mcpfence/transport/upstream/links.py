"""Which link reaches a route's upstream message by message: a stdio child, a legacy SSE
session, or a Streamable HTTP session driven as a client.

Hosted sessions (through a hub) and mcpfence's own tool listing use these; see
docs/explanation/architecture.md.
"""

from __future__ import annotations

from pathlib import Path

from mcpfence.config import RouteConfig
from mcpfence.transport.upstream.link import Link
from mcpfence.transport.upstream.pool import Upstream
from mcpfence.transport.upstream.sse import SseLink
from mcpfence.transport.upstream.stdio import StdioLink
from mcpfence.transport.upstream.streamable_http import StreamableHttpLink


def upstream_link(
    route: RouteConfig,
    upstream: Upstream | None,
    base_dir: Path,
    stateless: str | None = None,
    listen: bool = True,
) -> Link:
    """A fresh message link to the route's upstream; ``stateless``: the 2026-07-28 revision
    to speak without a session (Streamable HTTP upstreams only); ``listen=False``: no
    server stream (GET) for a link that only asks and reads the answers."""
    config = route.upstream
    if upstream is None:
        assert config.command is not None
        return StdioLink(route.name, config.command, config.env, cwd=base_dir)
    if config.kind == "sse":
        return SseLink(upstream)
    return StreamableHttpLink(upstream, protocol_version=stateless, listen=listen)

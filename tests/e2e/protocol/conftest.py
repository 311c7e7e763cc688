"""Fixtures for the protocol suite: upstream servers, one mcpfence in front of them.

Every test that takes ``target`` runs twice: straight to the upstream ("direct",
the reference) and through mcpfence ("proxied"). Whatever differs is a proxy bug.
Upstreams and proxy start once per session; each test starts with empty request logs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.clients import MCP_HEADERS
from tests.e2e.protocol.topology import (
    UPSTREAM_KEY,
    UPSTREAM_KEY_VAR,
    VARIANTS,
    Target,
    proxy_config,
    route_path,
)
from tests.e2e.protocol.upstream import Upstream, run_upstream
from tests.servers import Proxy, free_port, run_proxy


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, Upstream]]:
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(run_upstream(**options)) for name, options in VARIANTS.items()
        }


@pytest.fixture(autouse=True)
def _fresh_upstreams(upstreams: dict[str, Upstream]) -> None:
    for upstream in upstreams.values():
        upstream.reset()


@pytest.fixture(scope="session")
def flaky_port() -> int:
    """Where the "flaky" route's upstream lives; nothing listens there until a test starts it."""
    return free_port()


@pytest.fixture(scope="session")
def proxy(
    upstreams: dict[str, Upstream], flaky_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    config = proxy_config(upstreams, flaky_port)
    directory = tmp_path_factory.mktemp("proxy")
    with run_proxy(config, directory, env={UPSTREAM_KEY_VAR: UPSTREAM_KEY}) as running:
        yield running


@pytest.fixture(params=["direct", "proxied"])
def target(request: pytest.FixtureRequest, upstreams: dict[str, Upstream]) -> Target:
    if request.param == "direct":
        urls = {name: upstream.url for name, upstream in upstreams.items()}
    else:
        proxy: Proxy = request.getfixturevalue("proxy")
        urls = {name: proxy.url(route_path(name)) for name in upstreams}
    return Target(request.param, urls, upstreams)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client, sending the headers every MCP POST carries unless a test overrides them."""
    async with httpx.AsyncClient(timeout=10.0, headers=MCP_HEADERS) as client:
        yield client

"""Two worlds for the workflows: the demo upstreams called direct, and the same kind of
upstreams behind mcpfence as ``mcpfence demo`` runs it (``examples/demo.yaml``: the
shipped policy packs, the tags).

Servers and the proxy start once per test run (starting them per test would triple
the suite's time); each test gets its stores reseeded in place, so it asserts what
the upstream really recorded, and opens its own MCP session, so mcpfence's session
memory starts empty too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from examples.upstreams.common import http_app
from examples.upstreams.ipost import IPostStore
from examples.upstreams.ipost import build_server as build_ipost
from examples.upstreams.postmark import PostmarkStore
from examples.upstreams.postmark import build_server as build_postmark
from tests.cluster.nginx import nginx
from tests.cluster.redis_server import redis_server
from tests.cluster.topology import replicas
from tests.servers import run_proxy, serve_asgi

DEMO_CONFIG = Path(__file__).resolve().parents[3] / "examples" / "demo.yaml"
POLICIES = Path(__file__).resolve().parents[3] / "policies"  # the shipped packs
FILLER_CONTACTS = 30


@dataclass
class World:
    """Where a client connects for each vendor, and the stores behind them."""

    ipost: IPostStore
    postmark: PostmarkStore
    ipost_url: str
    postmark_url: str

    def reseed(self) -> None:
        """Back to the seed data, in place: the running servers hold these store objects."""
        _refill(self.ipost, IPostStore.seeded(FILLER_CONTACTS))
        _refill(self.postmark, PostmarkStore.seeded())


def _refill(store: IPostStore | PostmarkStore, fresh: IPostStore | PostmarkStore) -> None:
    for field in fields(store):
        setattr(store, field.name, getattr(fresh, field.name))


@contextmanager
def _upstreams() -> Iterator[World]:
    """Both demo servers on loopback, over seeded stores."""
    ipost, postmark = IPostStore.seeded(FILLER_CONTACTS), PostmarkStore.seeded()
    with (
        serve_asgi(http_app(build_ipost(ipost))) as ipost_base,
        serve_asgi(http_app(build_postmark(postmark))) as postmark_base,
    ):
        yield World(ipost, postmark, ipost_base + "/mcp", postmark_base + "/mcp")


@pytest.fixture(scope="session")
def direct_world() -> Iterator[World]:
    with _upstreams() as world:
        yield world


def demo_config(world: World, directory: Path) -> dict[str, Any]:
    """``examples/demo.yaml`` as ``mcpfence demo`` runs it, its routes pointed at ``world``."""
    config: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    urls = {"ipost": world.ipost_url, "postmark": world.postmark_url}
    config["policies"] = [str((DEMO_CONFIG.parent / path).resolve()) for path in config["policies"]]
    config["decision_log"] = {"path": str(directory / "decisions.jsonl")}
    config["routes"] = [
        {**route, "upstream": {**route["upstream"], "url": urls[route["name"]]}} for route in config["routes"]
    ]
    return config


@contextmanager
def _fenced(directory: Path, input_schema: str = "enforce", cluster: bool = False) -> Iterator[World]:
    with _upstreams() as upstream:
        config = demo_config(upstream, directory)
        config["routes"] = [{**route, "input_schema": input_schema} for route in config["routes"]]
        running = _cluster(config, directory) if cluster else _one_process(config, directory)
        with running as base:
            yield World(upstream.ipost, upstream.postmark, base + "/ipost/mcp", base + "/postmark/mcp")


@contextmanager
def _cluster(config: dict[str, Any], directory: Path) -> Iterator[str]:
    """Three cluster-mode replicas sharing a Redis behind deploy/nginx.conf; yields nginx's URL."""
    # Each replica has its own listeners, and one decision log each would interleave.
    shared = {key: value for key, value in config.items() if key not in ("routes", "decision_log", "server")}
    for folder in ("redis", "replicas", "nginx"):
        (directory / folder).mkdir()
    with (
        redis_server(directory / "redis") as redis,
        replicas(3, directory / "replicas", redis.url, config["routes"], **shared) as running,
        nginx([replica.proxy.port for replica in running], directory / "nginx") as url,
    ):
        yield url


@contextmanager
def _one_process(config: dict[str, Any], directory: Path) -> Iterator[str]:
    with run_proxy(config, directory) as proxy:
        yield proxy.base_url


@pytest.fixture(scope="session", params=["one-process", "cluster"])
def fenced_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """mcpfence as one process, and as three replicas behind a round-robin balancer."""
    with _fenced(tmp_path_factory.mktemp("fenced"), cluster=request.param == "cluster") as world:
        yield world


@pytest.fixture(scope="session")
def packs_alone_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The demo with the argument-schema check off: the packs' rules on their own."""
    with _fenced(tmp_path_factory.mktemp("packs-alone"), input_schema="off") as world:
        yield world


@pytest.fixture
def direct(direct_world: World) -> World:
    """The demo upstreams on their own: what an agent gets without mcpfence."""
    direct_world.reseed()
    return direct_world


@pytest.fixture
def fenced(fenced_world: World) -> World:
    """The same upstreams reached through mcpfence with both shipped packs."""
    fenced_world.reseed()
    return fenced_world


@pytest.fixture
def packs_alone(packs_alone_world: World) -> World:
    """The same upstreams through mcpfence with both packs and no argument-schema check."""
    packs_alone_world.reseed()
    return packs_alone_world

"""Several ``mcpfence serve`` replicas sharing one Redis, as a cluster runs them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.admin.conftest import ADMIN_TOKEN
from tests.servers import Proxy, free_port, run_proxy, wait_for_port

CLUSTER_SECRET = "cluster-secret-for-tests-0123456789"
ENV = {"MCPFENCE_ADMIN_TOKEN": ADMIN_TOKEN, "MCPFENCE_CLUSTER_SECRET": CLUSTER_SECRET}
PUBLIC_URL = "https://mcp.example.com"


class Replica:
    """One running replica: its proxy port and an admin client on its admin port."""

    def __init__(self, proxy: Proxy, admin_port: int, internal_port: int | None = None) -> None:
        self.proxy = proxy
        self.internal_port = internal_port
        self.admin = httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    def url(self, path: str) -> str:
        return self.proxy.url(path)

    def token_route_url(self, created: Mapping[str, Any]) -> str:
        """A token route's URL on this replica (the path of the public URL the API printed)."""
        return self.proxy.url("/mcp/" + str(created["url"]).rsplit("/mcp/", 1)[1])


def route_config(name: str, upstream_url: str, **extra: object) -> dict[str, object]:
    """A config route ``name`` at ``/{name}/mcp`` to ``upstream_url``."""
    return {"name": name, "path": f"/{name}/mcp", "upstream": {"url": upstream_url}, **extra}


def cluster_config(redis_url: str, routes: list[dict[str, Any]], admin_port: int) -> dict[str, Any]:
    return {
        "server": {"admin_port": admin_port, "public_url": PUBLIC_URL},
        "cluster": {"redis_url": redis_url},
        "routes": routes,
    }


@contextmanager
def replicas(
    count: int,
    directory: Path,
    redis_url: str,
    routes: list[dict[str, Any]],
    internal: bool = False,
    **extra: Any,
) -> Iterator[list[Replica]]:
    """``count`` replicas with the same config (each in its own folder), all started;
    ``internal``: each with an internal port, forwarding hosted sessions to their owner."""
    with ExitStack() as stack:
        running = []
        for index in range(count):
            folder = directory / f"replica-{index}"
            folder.mkdir()
            admin_port = free_port()
            config = {**cluster_config(redis_url, routes, admin_port), **extra}
            internal_port = free_port() if internal else None
            if internal_port is not None:
                config["cluster"] = {**config["cluster"], "internal_port": internal_port}
            proxy = stack.enter_context(run_proxy(config, folder, ENV))
            wait_for_port(admin_port, process=proxy.process)
            running.append(Replica(proxy, admin_port, internal_port))
        yield running

"""``mcpfence serve --workers N``: one port, several processes, state shared through Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.clients import MCP_HEADERS, request
from tests.cluster.redis_server import RedisServer, listening
from tests.polling import eventually
from tests.servers import free_port

pytestmark = pytest.mark.slow  # see docs/how-to/test.md

LIMITED = {"requests": 6, "per_seconds": 600, "key": "route"}


def write_config(directory: Path, upstream_url: str, port: int, redis_url: str | None) -> Path:
    config: dict[str, object] = {
        "server": {"host": "127.0.0.1", "port": port},
        "routes": [
            {"name": "crm", "path": "/crm/mcp", "upstream": {"url": upstream_url}, "rate_limit": LIMITED}
        ],
    }
    if redis_url is not None:
        config["cluster"] = {"redis_url": redis_url}
    path = directory / "mcpfence.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def workers(tmp_path: Path, redis: RedisServer, upstream_url: str) -> Iterator[str]:
    port = free_port()
    config = write_config(tmp_path, upstream_url, port, redis.url)
    command = [sys.executable, "-m", "mcpfence", "serve", "--config", str(config), "--workers", "2"]
    with listening(command, port):  # SIGTERM at the end: the parent stops its workers
        yield f"http://127.0.0.1:{port}"


def test_two_workers_share_one_port(workers: str) -> None:
    pids: set[int] = set()

    def both_seen() -> bool:
        response = httpx.get(f"{workers}/readyz", headers={"connection": "close"}, timeout=10)
        pids.add(response.json()["pid"])
        return len(pids) == 2

    eventually(both_seen, timeout=60)
    assert os.getpid() not in pids


def test_a_route_limit_counts_once_across_workers(workers: str) -> None:
    def ping(index: int) -> int:
        sent = {**MCP_HEADERS, "connection": "close"}
        return httpx.post(f"{workers}/crm/mcp", json=request("ping", id=index), headers=sent).status_code

    refused = [ping(index) == 429 for index in range(9)]
    assert refused == [False] * 6 + [True] * 3


def test_several_workers_without_cluster_mode_refuse_to_start(tmp_path: Path, upstream_url: str) -> None:
    config = write_config(tmp_path, upstream_url, free_port(), None)
    finished = subprocess.run(
        [sys.executable, "-m", "mcpfence", "serve", "--config", str(config), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MCPFENCE_REDIS_URL"},
    )
    assert finished.returncode == 2
    assert "cluster mode" in finished.stderr

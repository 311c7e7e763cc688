"""A running mcpfence whose admin listener serves the console over a log recorded from
the seed workflows, and a signed-in HTTP client for it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.workflows.conftest import POLICIES
from tests.replay.conftest import SeedLog, seed_log
from tests.servers import free_port, run_proxy, wait_for_port

__all__ = ["seed_log"]

ADMIN_TOKEN = "console-test-admin-token"
TRACE_URL = "http://jaeger.example/trace/{trace_id}"


@dataclass
class ConsoleSite:
    """Where the console is, where the proxy is, and the log it reads."""

    ui: str
    proxy: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.ui, follow_redirects=False, timeout=30)

    @contextmanager
    def signed_in(self) -> Iterator[httpx.Client]:
        with self.client() as client:
            form = client.get("/ui/login")
            response = client.post("/ui/login", data={"token": ADMIN_TOKEN, "csrf": csrf_of(form.text)})
            assert response.status_code == 303, response.text
            yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@pytest.fixture(scope="session")
def console_site(seed_log: SeedLog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSite]:
    directory = tmp_path_factory.mktemp("console")
    log = directory / "decisions.jsonl"
    shutil.copy(seed_log.path, log)
    admin_port = free_port()
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    config = {
        "server": {"admin_port": admin_port},
        "policies": [str(POLICIES)],
        "decision_log": {"path": str(log), "record_arguments": True},
        "console": {"trace_url": TRACE_URL},
        "routes": [
            {"name": "ipost", "path": "/ipost/mcp", "upstream": {"url": dead}},
            {"name": "postmark", "path": "/postmark/mcp", "upstream": {"url": dead}},
        ],
    }
    with run_proxy(config, directory, env={"MCPFENCE_ADMIN_TOKEN": ADMIN_TOKEN}) as proxy:
        wait_for_port(admin_port, process=proxy.process)
        yield ConsoleSite(f"http://127.0.0.1:{admin_port}", proxy.base_url, log)

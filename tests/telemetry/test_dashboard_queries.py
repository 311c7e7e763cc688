"""Every panel of the shipped Grafana dashboard returns series from a real Prometheus
(the Debian package) scraping a real mcpfence that served every kind of call."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from tests.e2e.test_telemetry import POLICIES, Forwarded, build_upstream, failed_initialize
from tests.examples.client import connect
from tests.servers import free_port, run_proxy, serve_asgi, wait_for_port

pytestmark = pytest.mark.slow  # see docs/how-to/test.md

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "mcpfence.json"
# What Grafana substitutes: the "All" route, and a rate window of several 1 s scrapes.
VARIABLES = {"$route": ".*", "$__rate_interval": "30s"}
AUDIT = {
    "apiVersion": "mcpfence/v1",
    "kind": "ToolPolicy",
    "metadata": {"name": "subject-audit"},
    "spec": {
        "match": {"tools": ["send_email"]},
        "action": "audit",
        "validations": [{"expression": "args.subject != 'audit me'", "message": "audited subject"}],
    },
}


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            found.append((panel["title"], expr))
    return found


async def traffic(url: str, dead_url: str) -> None:
    """An allowed, a rewritten, a denied and an audited call, a failing tool, a dead upstream."""
    async with connect(url) as session:
        mail = {"subject": "plans", "body": "hello"}
        for to in ("ann@example.com", "Bob@Example.COM", "eve@evil.test"):
            await session.call_tool("send_email", {"to": to, **mail})
        await session.call_tool("send_email", {"to": "cy@example.com", "subject": "audit me", "body": "x"})
        await session.call_tool("explode", {"reason": "boom"})
    assert await failed_initialize(dead_url) is not None


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for_series(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.query(expr)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    directory = tmp_path_factory.mktemp("dashboard")
    policies = directory / "policies.yaml"
    policies.write_text(yaml.safe_dump_all([*POLICIES, AUDIT]))
    admin_port, prometheus_port = free_port(), free_port()
    forwarded: list[Forwarded] = []
    with serve_asgi(build_upstream(forwarded)) as upstream:
        config = {
            "server": {"admin_port": admin_port},
            "policies": ["policies.yaml"],
            "routes": [
                {"name": "mail", "path": "/mail/mcp", "upstream": {"url": upstream + "/mcp"}},
                {"name": "dead", "path": "/dead/mcp", "upstream": {"url": f"http://127.0.0.1:{free_port()}/mcp"}},
            ],
        }
        with run_proxy(config, directory) as proxy:
            wait_for_port(admin_port, process=proxy.process)
            (directory / "prometheus.yml").write_text(yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [{"job_name": "mcpfence", "static_configs": [
                    {"targets": [f"127.0.0.1:{admin_port}"]}
                ]}],
            }))
            command = [
                "prometheus",
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ]
            server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for_port(prometheus_port, timeout=60, process=server)
                found = Prometheus(f"http://127.0.0.1:{prometheus_port}")
                assert found.wait_for_series('up{job="mcpfence"} == 1')
                anyio.run(traffic, proxy.url("/mail/mcp"), proxy.url("/dead/mcp"))
                policies.write_text(policies.read_text() + "# edited: the proxy reloads\n")
                yield found
            finally:
                server.terminate()
                server.wait(timeout=30)


@pytest.mark.parametrize(("title", "expr"), panel_queries(), ids=[t for t, _ in panel_queries()])
def test_dashboard_panel_returns_series(prometheus: Prometheus, title: str, expr: str) -> None:
    assert prometheus.wait_for_series(expr), f"panel {title!r}: no series for {expr}"


def test_the_route_variable_lists_every_route_that_served_calls(prometheus: Prometheus) -> None:
    query = json.loads(DASHBOARD.read_text())["templating"]["list"][0]["query"]["query"]
    metric, label = query.removeprefix("label_values(").removesuffix(")").split(", ")
    found = prometheus.wait_for_series(f"count by ({label}) ({metric})")
    assert {series["metric"].get(label) for series in found} >= {"mail"}

"""mcpfence in front of the CRM test server, one route per ``input_schema`` mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.input_schema.upstream import Crm
from tests.servers import Proxy, run_proxy, serve_asgi

# Mutations run before the schema check: one breaks a type, one repairs it.
POLICIES = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: thirteen-spelled-out}
spec:
  match: {tools: [set_limit]}
  when: "args.limit == 13"
  mutations:
    - path: /limit
      expression: "'thirteen'"
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: yes-means-true}
spec:
  match: {tools: [update_contact]}
  when: "args.GlobalEmailStatus == 'yes'"
  mutations:
    - path: /GlobalEmailStatus
      expression: "true"
"""


def route(name: str, url: str, mode: str) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": {"url": url}, "input_schema": mode}


@pytest.fixture(scope="module")
def crm() -> Crm:
    return Crm()


@pytest.fixture(autouse=True)
def _fresh_state(crm: Crm) -> None:
    crm.reset()


@pytest.fixture(scope="module")
def upstream_url(crm: Crm) -> Iterator[str]:
    with serve_asgi(crm.app()) as base:
        yield base + "/mcp"


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("policies")
    (folder / "pack.yaml").write_text(POLICIES)
    return folder


def proxy_config(url: str, policy_dir: Path) -> dict[str, Any]:
    return {
        "policies": [str(policy_dir)],
        "decision_log": {"path": "decisions.jsonl"},
        "routes": [route("crm", url, "enforce"), route("audit", url, "audit"), route("off", url, "off")],
    }


@pytest.fixture(scope="module")
def proxy(upstream_url: str, policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with run_proxy(proxy_config(upstream_url, policy_dir), tmp_path_factory.mktemp("proxy")) as running:
        yield running


@pytest.fixture
def fresh_proxy(upstream_url: str, policy_dir: Path, tmp_path: Path) -> Iterator[Proxy]:
    """A proxy that has seen no tool list yet."""
    with run_proxy(proxy_config(upstream_url, policy_dir), tmp_path) as running:
        yield running

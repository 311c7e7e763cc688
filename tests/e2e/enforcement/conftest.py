"""An SDK upstream that records the arguments it receives, behind mcpfence with a small pack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from tests.servers import Proxy, free_port, run_proxy, serve_asgi

POLICIES = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: emails-lowercase}
spec:
  match: {tools: [add_email]}
  mutations:
    - path: /email
      expression: "args.email.trim().lowerAscii()"
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: no-null-status}
spec:
  match: {tools: [set_status]}
  validations:
    - expression: "args.status != null"
      message: "status must not be null"
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: long-notes-audited}
spec:
  match: {tools: [add_note]}
  action: audit
  validations:
    - expression: "size(args.note) <= 10"
      message: "notes over 10 characters are reviewed"
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: regions-lowercase}
spec:
  match: {tools: [set_region]}
  mutations:
    - path: /region
      expression: "args.region.lowerAscii()"
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: tokens-verbatim}
spec:
  match: {tools: [use_token]}
  opaque:
    - path: /token
      pattern: "^[A-Za-z0-9]{16,}$"
"""
TOKEN = "Tok3nABCDEFGH12345xyz"


class Recorder:
    """The upstream's view: every tool call it actually received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def server(self) -> MCPServer:
        server = MCPServer("recorder")

        @server.tool()
        def add_email(email: str) -> str:
            self.calls.append(("add_email", {"email": email}))
            return email

        @server.tool()
        def set_status(status: bool | None) -> str:
            self.calls.append(("set_status", {"status": status}))
            return "ok"

        @server.tool()
        def add_note(note: str) -> str:
            self.calls.append(("add_note", {"note": note}))
            return "ok"

        @server.tool()
        def issue_token() -> str:
            return TOKEN

        @server.tool()
        def nested_text() -> str:
            """A result whose text is JSON nested far deeper than any parser's stack."""
            return "[" * 100_000 + json.dumps(TOKEN) + "]" * 100_000

        @server.tool()
        def use_token(token: str) -> str:
            self.calls.append(("use_token", {"token": token}))
            return "ok"

        @server.tool()
        def set_region(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
            """A 2026-07-28 tool whose region argument is mirrored in the Mcp-Param-Region header."""
            self.calls.append(("set_region", {"region": region}))
            return region

        return server


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(autouse=True)
def _forget_calls(recorder: Recorder) -> None:
    recorder.calls.clear()


@pytest.fixture(scope="module")
def upstream_url(recorder: Recorder) -> Iterator[str]:
    with serve_asgi(recorder.server().streamable_http_app()) as base:
        yield base + "/mcp"


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("policies")
    (folder / "pack.yaml").write_text(POLICIES)
    return folder


@pytest.fixture(scope="module")
def admin_port() -> int:
    """The admin listener's port: its ``/metrics`` count policy reloads."""
    return free_port()


@pytest.fixture(scope="module")
def proxy(
    upstream_url: str, policy_dir: Path, admin_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    config = {
        "server": {"admin_port": admin_port},
        "policies": [str(policy_dir)],
        "decision_log": {"path": "decisions.jsonl"},
        "routes": [{"name": "rec", "path": "/rec/mcp", "upstream": {"url": upstream_url}}],
    }
    with run_proxy(config, tmp_path_factory.mktemp("proxy")) as running:
        yield running

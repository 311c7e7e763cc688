"""A running mcpfence between hypothesis-driven clients and two upstreams.

- ``/rec/mcp``: a real MCP SDK server that records what reaches its tools, behind a
  small policy pack (``danger`` is always denied, ``echo``'s text is lower-cased).
- ``/hostile/mcp``: a scripted upstream that answers each POST with whatever the
  current example put in :class:`Script` (status, content type, body), behind a
  read-only route, so whatever it sends must still be checked and filtered.

Examples are bounded and derandomized (see ``FUZZ``): the same inputs run on every
machine and CI stays deterministic.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from mcp.server.mcpserver import MCPServer

from tests.clients import MCP_HEADERS, initialize_request, session_headers
from tests.decision_log import written_lines
from tests.e2e.enforcement.hostile import answering, read_body
from tests.servers import Proxy, run_proxy, serve_asgi

# Every property test runs these settings: fixed inputs, no example database, no
# per-example deadline (the proxy is a subprocess sharing a busy machine), and no
# shrinking, whose time has no bound: a failure reports the example as generated.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# How long one exchange may take before it counts as a hang.
HANG_SECONDS = 20.0

POLICIES = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: never-danger}
spec:
  match: {tools: [danger]}
  validations:
    - expression: "false"
      message: "danger is never allowed"
---
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: echo-lowercase}
spec:
  match: {tools: [echo]}
  mutations:
    - path: /text
      expression: "args.text.lowerAscii()"
"""
TOOLS = ("echo", "danger", "list_items")


class Recorder:
    """What the real upstream's tools actually received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def server(self) -> MCPServer:
        server = MCPServer("fuzz-target")

        @server.tool()
        def echo(text: str) -> str:
            self.calls.append(("echo", text))
            return text

        @server.tool()
        def danger(text: str) -> str:
            self.calls.append(("danger", text))
            return "done"

        @server.tool()
        def list_items(text: str) -> str:
            self.calls.append(("list_items", text))
            return "[]"

        return server


@dataclass
class Script:
    """The hostile upstream's next answer: set by each example before it sends."""

    status: int = 200
    content_type: str = "application/json"
    body: bytes = b"{}"
    requests: list[bytes] = field(default_factory=list)


def scripted_upstream(script: Script) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        script.requests.append(body)
        headers = [(b"content-type", script.content_type.encode("latin-1"))]
        await send({"type": "http.response.start", "status": script.status, "headers": headers})
        # A hostile upstream still knows the ids it was sent: its answers name them.
        await send({"type": "http.response.body", "body": answering(body, script.body)})

    return app


@dataclass
class Target:
    proxy: Proxy
    recorder: Recorder
    script: Script
    decision_log: Path
    http: httpx.Client
    session_id: str = ""

    def url(self, route: str) -> str:
        return self.proxy.url(f"/{route}/mcp")

    def post(self, route: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        """One POST; a response slower than ``HANG_SECONDS`` raises (a hang)."""
        merged = {**MCP_HEADERS, "content-type": "application/json", **(headers or {})}
        return self.http.post(self.url(route), content=body, headers=merged)

    def in_session(self) -> dict[str, str]:
        return session_headers(self.session_id)

    def decisions(self) -> list[dict[str, Any]]:
        return written_lines(self.decision_log)

    def wait_for_decisions(self, found: Any, timeout: float = HANG_SECONDS) -> list[dict[str, Any]]:
        """The decision lines once ``found(lines)`` holds (the log is written by a thread)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.decisions()
            if found(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "policies.yaml").write_text(POLICIES)
    recorder, script = Recorder(), Script()
    with (
        serve_asgi(recorder.server().streamable_http_app()) as real,
        serve_asgi(scripted_upstream(script)) as hostile,
    ):
        config = {
            "policies": ["policies.yaml"],
            "decision_log": {"path": "decisions.jsonl", "include_arguments": True},
            "routes": [
                {"name": "rec", "path": "/rec/mcp", "upstream": {"url": real + "/mcp"}},
                {
                    "name": "hostile",
                    "path": "/hostile/mcp",
                    "upstream": {"url": hostile + "/mcp", "timeout_seconds": 5},
                    "expose": {"methods": ["read"]},
                },
            ],
        }
        with run_proxy(config, directory) as proxy, httpx.Client(timeout=HANG_SECONDS) as http:
            found = Target(proxy, recorder, script, directory / "decisions.jsonl", http)
            opened = found.post("rec", json.dumps(initialize_request()).encode())
            found.session_id = opened.headers["mcp-session-id"]
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            found.post("rec", json.dumps(initialized).encode(), found.in_session())
            listed = {"jsonrpc": "2.0", "id": 0, "method": "tools/list"}
            found.post("rec", json.dumps(listed).encode(), found.in_session())
            yield found

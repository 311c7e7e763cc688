"""An upstream answering with an HTTP error status is checked like any other answer.

Whatever the status, each answer passes the route's pipeline: a tool list answered
with 500 is filtered, a call answered with 502 gets its decision-log line, and a
body that carries no JSON-RPC answer becomes a -32603 error for the request. The
body of an answer to a GET or DELETE is checked too, or not relayed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients import MCP_HEADERS
from tests.decision_log import written_lines
from tests.e2e.enforcement.hostile import LISTING, canned_upstream, list_tools, read_only_route
from tests.servers import Proxy, run_proxy, serve_asgi

CALL = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "list_contacts"}}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    json_500 = canned_upstream(b"application/json", {"/json/mcp": LISTING}, status=500)
    page_502 = canned_upstream(b"text/html", {"/html/mcp": b"<h1>Bad Gateway</h1>"}, status=502)
    with serve_asgi(json_500) as json_base, serve_asgi(page_502) as html_base:
        # No schema check: the upstream's error page is what is under test, not a self-listing.
        no_schema = {"input_schema": "off"}
        html = [
            {"name": n, "path": f"/{n}/mcp", "upstream": {"url": f"{html_base}/html/mcp"}, **no_schema}
            for n in ("html", "logged")
        ]
        routes = [read_only_route("json", json_base + "/json/mcp"), *html]
        config = {"routes": routes, "decision_log": {"path": "decisions.jsonl"}}
        with run_proxy(config, Path(tmp_path_factory.mktemp("error-answers"))) as running:
            yield running


def _logged(proxy: Proxy, route: str) -> list[dict[str, object]]:
    """The decision-log lines of ``route``, once the writer has flushed one."""
    log = proxy.config_path.parent / "decisions.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = written_lines(log)
        if any(line["route"] == route for line in lines):
            return [line for line in lines if line["route"] == route]
        time.sleep(0.05)
    return []


def test_a_tool_list_answered_with_500_is_filtered(proxy: Proxy) -> None:
    response = list_tools(proxy, "/json/mcp")
    assert response.status_code == 500
    assert "list_contacts" in response.text
    assert "delete_contact" not in response.text


def test_a_call_answered_with_an_error_page_is_an_internal_error_with_its_status(proxy: Proxy) -> None:
    response = httpx.post(proxy.url("/html/mcp"), json=CALL, headers=MCP_HEADERS, timeout=10)
    assert response.status_code == 502
    assert "Bad Gateway" not in response.text  # a body mcpfence cannot check is not relayed
    assert response.json()["id"] == 5
    assert response.json()["error"]["code"] == -32603
    assert "HTTP 502" in response.json()["error"]["message"]


def test_a_call_answered_with_an_error_page_has_its_decision_log_line(proxy: Proxy) -> None:
    httpx.post(proxy.url("/logged/mcp"), json=CALL, headers=MCP_HEADERS, timeout=10)
    logged = _logged(proxy, "logged")
    assert [(line["tool"], line["decision"]) for line in logged] == [("list_contacts", "allow")]


def test_a_get_answered_with_a_json_body_relays_it_checked(proxy: Proxy) -> None:
    response = httpx.get(proxy.url("/json/mcp"), headers={"accept": "text/event-stream"}, timeout=10)
    assert response.status_code == 500
    assert "delete_contact" not in response.text

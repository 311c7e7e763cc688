"""Credentials in an upstream URL (userinfo, query) never leave mcpfence.

Operators put API keys in upstream URLs (``https://user:pass@host/mcp``,
``https://host/mcp?api_key=...``). Every place mcpfence prints an upstream URL --
errors sent to clients, span status and events, its own log and start-up output, the
admin API's errors -- shows the URL with userinfo and query replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from tests.clients import MCP_HEADERS, initialize_request
from tests.servers import free_port, run_proxy, serve_asgi, wait_for_port
from tests.telemetry.otlp_receiver import OtlpReceiver, otlp_receiver

PASSWORD = "tiger-pw-5521"
KEY = "KEY-SECRET-9931"
ADMIN_TOKEN = "url-secrets-admin-token"
SECRETS = (PASSWORD, KEY)


def secret_url(base: str) -> str:
    """``base`` (``http://host:port``) with a password and an API key in the URL."""
    return base.replace("http://", f"http://scott:{PASSWORD}@") + f"/mcp?api_key={KEY}"


async def not_json(scope: Scope, receive: Receive, send: Send) -> None:
    """An upstream that answers every request with text: mcpfence reports it by URL."""
    if scope["type"] == "http":
        await PlainTextResponse("oops")(scope, receive, send)


@dataclass
class Stack:
    receiver: OtlpReceiver
    answers: dict[str, str]
    admin_answer: str
    output: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("url-secrets")
    admin_port = free_port()
    with otlp_receiver() as receiver, serve_asgi(not_json) as broken:
        config = {
            "server": {"admin_port": admin_port},
            "storage": {"path": str(directory / "routes.db")},
            "routes": [
                {"name": "dead", "path": "/dead/mcp",
                 "upstream": {"url": secret_url(f"http://127.0.0.1:{free_port()}")}},
                {"name": "broken", "path": "/broken/mcp", "upstream": {"url": secret_url(broken)}},
            ],
        }
        env = {
            "MCPFENCE_ADMIN_TOKEN": ADMIN_TOKEN,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        with run_proxy(config, directory, env) as proxy:
            wait_for_port(admin_port, process=proxy.process)
            answers = {}
            with httpx.Client(headers=MCP_HEADERS, timeout=30) as http:
                for name in ("dead", "broken"):
                    answers[name] = http.post(proxy.url(f"/{name}/mcp"), json=initialize_request()).text
                admin = http.post(
                    f"http://127.0.0.1:{admin_port}/admin/routes",
                    json={"name": "on-dead", "upstream": "dead"},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
            receiver.wait_for(lambda r: sum(s.kind == "SERVER" for s in r.spans) >= 2)
            output = proxy.stop()
        yield Stack(receiver, answers, admin.text, output)


@pytest.mark.parametrize("route", ["dead", "broken"])
def test_client_errors_name_the_upstream_without_its_secrets(stack: Stack, route: str) -> None:
    answer = stack.answers[route]
    assert "upstream http://" in answer
    for secret in SECRETS:
        assert secret not in answer


def test_span_status_and_events_hold_no_url_secrets(stack: Stack) -> None:
    exported = repr([(s.attributes, s.status_message, s.event_attributes) for s in stack.receiver.spans])
    assert any(s.status_message for s in stack.receiver.spans)
    for secret in SECRETS:
        assert secret not in exported


def test_log_and_startup_output_hold_no_url_secrets(stack: Stack) -> None:
    assert "route dead:" in stack.output
    for secret in SECRETS:
        assert secret not in stack.output


def test_admin_api_errors_hold_no_url_secrets(stack: Stack) -> None:
    assert "could not list the tools" in stack.admin_answer
    for secret in SECRETS:
        assert secret not in stack.admin_answer

"""The Postmark-like demo upstream, driven by the official SDK client over real HTTP.

Tests named for a footgun document the harm mcpfence's Postmark policy pack prevents:
the upstream itself accepts the call and does the damage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from examples.upstreams.common import RequestBudget, http_app
from examples.upstreams.postmark import OVER_BUDGET, PostmarkStore, build_server
from tests.examples.client import call, call_error, connect
from tests.servers import serve_asgi

SENDER = "Acme <notifications@acme.example>"
HARD_BOUNCE, SOFT_BOUNCE, COMPLAINT = 692560173, 692560174, 692560175
WELCOME_MODEL = {"name": "Ada", "product_name": "Acme", "action_url": "https://acme.example/start"}


@pytest.fixture
def store() -> PostmarkStore:
    return PostmarkStore.seeded()


@pytest.fixture
def url(store: PostmarkStore) -> Iterator[str]:
    with serve_asgi(http_app(build_server(store))) as base:
        yield base + "/mcp"


def email(**fields: Any) -> dict[str, Any]:
    return {"From": SENDER, "To": "ada@example.com", "Subject": "Hi", "TextBody": "Hello", **fields}


# --------------------------------------------------------------------------- catalogue


@pytest.mark.anyio
async def test_tools_use_the_managed_mcp_names(url: str) -> None:
    async with connect(url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {
        "create_a_postmark_email",
        "create_a_postmark_templated_email",
        "create_a_postmark_batch_email",
        "list_all_postmark_bounces",
        "get_single_postmark_bounce_dump_by_id",
        "create_a_postmark_bounce_activation",
        "get_single_postmark_delivery_stat_by_id",
    }
    for name, tool in tools.items():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is name.startswith(("get_", "list_")), name


@pytest.mark.anyio
async def test_send_schema_makes_message_stream_optional(url: str) -> None:
    async with connect(url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    schema = tools["create_a_postmark_email"].input_schema
    assert "MessageStream" in schema["properties"]
    assert schema["required"] == ["From", "To", "Subject"]


# --------------------------------------------------------------------------- sending


@pytest.mark.anyio
async def test_footgun_send_without_message_stream_goes_to_outbound(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        result = await call(session, "create_a_postmark_email", email())
    assert (result["ErrorCode"], result["Message"]) == (0, "OK")
    assert store.sent[0]["MessageStream"] == "outbound"
    assert store.sent[0]["MessageID"] == result["MessageID"]


@pytest.mark.anyio
async def test_send_on_the_broadcast_stream_is_recorded_there(url: str, store: PostmarkStore) -> None:
    headers = [{"Name": "List-Unsubscribe", "Value": "<https://acme.example/unsub>"}]
    async with connect(url) as session:
        await call(session, "create_a_postmark_email", email(MessageStream="broadcast", Headers=headers))
    assert store.sent[0]["MessageStream"] == "broadcast"
    assert store.sent[0]["Headers"] == headers


@pytest.mark.anyio
async def test_unknown_message_stream_is_refused(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        message = await call_error(session, "create_a_postmark_email", email(MessageStream="marketing"))
    assert "ErrorCode 1235" in message
    assert store.sent == []


@pytest.mark.anyio
async def test_more_than_50_recipients_are_refused(url: str) -> None:
    to = ",".join(f"r{n}@example.com" for n in range(51))
    async with connect(url) as session:
        message = await call_error(session, "create_a_postmark_email", email(To=to))
    assert "Maximum of 50 recipients" in message


@pytest.mark.anyio
async def test_send_needs_a_body(url: str) -> None:
    async with connect(url) as session:
        message = await call_error(
            session, "create_a_postmark_email", {"From": SENDER, "To": "ada@example.com", "Subject": "x"}
        )
    assert "TextBody or HtmlBody" in message


@pytest.mark.anyio
async def test_send_to_an_inactive_address_is_refused(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        message = await call_error(session, "create_a_postmark_email", email(To="jane.smith@example.net"))
    assert "ErrorCode 406" in message
    assert store.sent == []


# --------------------------------------------------------------------------- templates


@pytest.mark.anyio
async def test_templated_send_renders_the_template(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        await call(
            session,
            "create_a_postmark_templated_email",
            {
                "From": SENDER,
                "To": "ada@example.com",
                "TemplateAlias": "welcome",
                "TemplateModel": WELCOME_MODEL,
            },
        )
    [sent] = store.sent
    assert sent["Subject"] == "Welcome to Acme, Ada!"
    assert (sent["TemplateId"], sent["TemplateModel"]) == (40001, WELCOME_MODEL)
    assert sent["MessageStream"] == "outbound"


@pytest.mark.anyio
async def test_templated_send_accepts_a_template_id(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        await call(
            session,
            "create_a_postmark_templated_email",
            {"From": SENDER, "To": "ada@example.com", "TemplateId": 40001, "TemplateModel": WELCOME_MODEL},
        )
    assert store.sent[0]["TemplateAlias"] == "welcome"


@pytest.mark.anyio
async def test_template_model_missing_a_variable_is_refused(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        message = await call_error(
            session,
            "create_a_postmark_templated_email",
            {
                "From": SENDER,
                "To": "ada@example.com",
                "TemplateAlias": "welcome",
                "TemplateModel": {"name": "Ada"},
            },
        )
    assert "missing variables: action_url, product_name" in message
    assert store.sent == []


@pytest.mark.anyio
async def test_unknown_template_is_refused(url: str) -> None:
    async with connect(url) as session:
        message = await call_error(
            session,
            "create_a_postmark_templated_email",
            {"From": SENDER, "To": "ada@example.com", "TemplateAlias": "nope", "TemplateModel": {}},
        )
    assert "Template not found" in message


@pytest.mark.anyio
async def test_footgun_newsletter_template_without_stream_rides_the_transactional_stream(
    url: str, store: PostmarkStore
) -> None:
    model = {"name": "Ada", "headline": "Spring picks", "unsubscribe_url": "https://acme.example/unsub"}
    async with connect(url) as session:
        await call(
            session,
            "create_a_postmark_templated_email",
            {
                "From": SENDER,
                "To": "ada@example.com",
                "TemplateAlias": "spring-newsletter",
                "TemplateModel": model,
            },
        )
    assert (store.sent[0]["TemplateAlias"], store.sent[0]["MessageStream"]) == (
        "spring-newsletter",
        "outbound",
    )


# --------------------------------------------------------------------------- batch


@pytest.mark.anyio
async def test_batch_send_answers_each_message(url: str, store: PostmarkStore) -> None:
    messages = [email(), email(To="bob@example.com", MessageStream="broadcast"), email(MessageStream="nope")]
    async with connect(url) as session:
        result = await call(session, "create_a_postmark_batch_email", {"Messages": messages})
    assert [r["ErrorCode"] for r in result["result"]] == [0, 0, 1235]
    assert [m["MessageStream"] for m in store.sent] == ["outbound", "broadcast"]


# --------------------------------------------------------------------------- bounces


@pytest.mark.anyio
async def test_bounces_list_newest_first_with_filters(url: str) -> None:
    async with connect(url) as session:
        everything = await call(session, "list_all_postmark_bounces", {})
        hard = await call(
            session, "list_all_postmark_bounces", {"type": "HardBounce", "messagestream": "outbound"}
        )
    assert everything["TotalCount"] == 4
    assert [b["BouncedAt"] for b in everything["Bounces"]] == sorted(
        (b["BouncedAt"] for b in everything["Bounces"]), reverse=True
    )
    assert [b["ID"] for b in hard["Bounces"]] == [HARD_BOUNCE]
    assert hard["Bounces"][0]["Inactive"] is True


@pytest.mark.anyio
async def test_bounce_dump_is_the_raw_smtp_text(url: str) -> None:
    async with connect(url) as session:
        dump = await call(session, "get_single_postmark_bounce_dump_by_id", {"id": HARD_BOUNCE})
    assert dump["Body"].startswith("Return-Path: <>\n")
    assert "550 5.1.1 <jane.smith@example.net>: Recipient address rejected: User unknown" in dump["Body"]


@pytest.mark.anyio
async def test_bounce_without_a_dump_has_an_empty_body(url: str) -> None:
    async with connect(url) as session:
        dump = await call(session, "get_single_postmark_bounce_dump_by_id", {"id": SOFT_BOUNCE})
    assert dump == {"Body": ""}


@pytest.mark.anyio
async def test_footgun_activation_reactivates_a_user_unknown_hard_bounce(
    url: str, store: PostmarkStore
) -> None:
    async with connect(url) as session:
        result = await call(session, "create_a_postmark_bounce_activation", {"id": HARD_BOUNCE})
        resent = await call(session, "create_a_postmark_email", email(To="jane.smith@example.net"))
    assert result["Bounce"]["Inactive"] is False
    assert store.activations == [HARD_BOUNCE]
    assert resent["ErrorCode"] == 0


@pytest.mark.anyio
async def test_spam_complaint_cannot_be_activated(url: str, store: PostmarkStore) -> None:
    async with connect(url) as session:
        message = await call_error(session, "create_a_postmark_bounce_activation", {"id": COMPLAINT})
    assert "cannot be activated" in message
    assert store.bounces[COMPLAINT].inactive is True


@pytest.mark.anyio
async def test_delivery_stats_count_bounces_per_stream(url: str) -> None:
    async with connect(url) as session:
        stats = await call(session, "get_single_postmark_delivery_stat_by_id", {"id": "outbound"})
    assert stats["MessageStreamType"] == "Transactional"
    assert stats["InactiveMails"] == 1
    assert stats["Bounces"] == [
        {"Name": "All", "Count": 2},
        {"Type": "HardBounce", "Name": "HardBounce", "Count": 1},
        {"Type": "SoftBounce", "Name": "SoftBounce", "Count": 1},
    ]


# --------------------------------------------------------------------------- request budget

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
def budgeted_url(store: PostmarkStore) -> Iterator[str]:
    app = RequestBudget(http_app(build_server(store)), limit=2, window_seconds=3600, body=OVER_BUDGET)
    with serve_asgi(app) as base:
        yield base + "/mcp"


def test_responses_within_budget_carry_rate_limit_headers(budgeted_url: str) -> None:
    with httpx.Client() as client:
        responses = [client.post(budgeted_url, json=INITIALIZE, headers=MCP_HEADERS) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["1", "0"]
    assert responses[0].headers["X-RateLimit-Limit"] == "2"


def test_over_budget_the_http_layer_answers_429_with_retry_after(budgeted_url: str) -> None:
    with httpx.Client() as client:
        for _ in range(2):
            client.post(budgeted_url, json=INITIALIZE, headers=MCP_HEADERS)
        refused = client.post(budgeted_url, json=INITIALIZE, headers=MCP_HEADERS)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.json()["ErrorCode"] == 429


def test_the_budget_refills_when_the_window_ends(store: PostmarkStore) -> None:
    now = [1_000.0]
    app = RequestBudget(http_app(build_server(store)), limit=1, window_seconds=60, clock=lambda: now[0])
    with serve_asgi(app) as base, httpx.Client() as client:
        client.post(base + "/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        refused = client.post(base + "/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        now[0] += 60
        accepted = client.post(base + "/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "60")
    assert (accepted.status_code, accepted.headers["X-RateLimit-Reset"]) == (200, "1120")


@pytest.mark.anyio
async def test_an_sdk_client_works_within_budget(store: PostmarkStore) -> None:
    with serve_asgi(RequestBudget(http_app(build_server(store)), limit=100)) as base:
        async with connect(base + "/mcp") as session:
            await call(session, "create_a_postmark_email", email())
    assert len(store.sent) == 1


@pytest.mark.anyio
async def test_a_send_needs_a_subject(url: str, store: PostmarkStore) -> None:
    message = {"From": SENDER, "To": "ada@example.com", "TextBody": "Hello"}
    async with connect(url) as session:
        missing = await call_error(session, "create_a_postmark_email", message)
        batch = await call(session, "create_a_postmark_batch_email", {"Messages": [message]})
    assert "Subject" in missing
    assert batch["result"][0]["ErrorCode"] == 300
    assert store.sent == []

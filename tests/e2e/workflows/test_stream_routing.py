"""Check a stream's delivery stats, then send a templated email on the right stream.

Postmark sends a message without MessageStream on the transactional stream, and any
template on any stream: a newsletter rides the transactional stream unnoticed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp.client.session import ClientSession

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, call_error, connect

SEND = "create_a_postmark_templated_email"
NEWSLETTER: dict[str, Any] = {
    "From": "news@acme.example",
    "To": "john.doe@example.com",
    "TemplateAlias": "spring-newsletter",
    "TemplateModel": {"name": "John", "headline": "Spring picks", "unsubscribe_url": "https://acme.example/u"},
}
PASSWORD_RESET: dict[str, Any] = {
    "From": "accounts@acme.example",
    "To": "john.doe@example.com",
    "TemplateAlias": "password-reset",
    "TemplateModel": {"name": "John", "product_name": "Acme", "action_url": "https://acme.example/r"},
}


@asynccontextmanager
async def after_stats(url: str) -> AsyncIterator[ClientSession]:
    """A session that has just read the broadcast stream's delivery stats, as the seed does."""
    async with connect(url) as session:
        stats = await call(session, "get_single_postmark_delivery_stat_by_id", {"id": "broadcast"})
        assert stats["MessageStreamType"] == "Broadcasts"
        yield session


@pytest.mark.anyio
async def test_direct_newsletter_without_a_stream_goes_out_on_transactional(direct: World) -> None:
    async with after_stats(direct.postmark_url) as session:
        await call(session, SEND, NEWSLETTER)

    assert direct.postmark.sent[-1]["MessageStream"] == "outbound"


@pytest.mark.anyio
async def test_fenced_newsletter_without_a_stream_is_refused(fenced: World) -> None:
    async with after_stats(fenced.postmark_url) as session:
        message = await call_error(session, SEND, NEWSLETTER)

    assert "Blocked by policy postmark-message-stream-required" in message
    assert "MessageStream: broadcast" in message
    assert fenced.postmark.sent == []


@pytest.mark.anyio
async def test_fenced_transactional_template_on_broadcast_is_refused(fenced: World) -> None:
    async with after_stats(fenced.postmark_url) as session:
        message = await call_error(session, SEND, {**PASSWORD_RESET, "MessageStream": "broadcast"})

    assert "Blocked by policy postmark-transactional-template-on-outbound" in message
    assert fenced.postmark.sent == []


@pytest.mark.anyio
async def test_fenced_templates_on_their_streams_are_sent(fenced: World) -> None:
    async with after_stats(fenced.postmark_url) as session:
        await call(session, SEND, {**NEWSLETTER, "MessageStream": "broadcast"})
        await call(session, SEND, {**PASSWORD_RESET, "MessageStream": "outbound"})

    sent = [(m["TemplateAlias"], m["MessageStream"]) for m in fenced.postmark.sent]
    assert sent == [("spring-newsletter", "broadcast"), ("password-reset", "outbound")]

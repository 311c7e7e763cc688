"""List the bounces, read a bounce's dump, reactivate the address.

Postmark reactivates a "User unknown" hard bounce, so the next mail to a mailbox
that does not exist is sent and bounces again.
"""

from __future__ import annotations

import pytest
from mcp.client.session import ClientSession

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, call_error, connect

USER_UNKNOWN = 692560173  # jane.smith@example.net, hard bounce with a dump
MAILBOX_FULL = 692560174  # soft bounce


async def hard_bounce(session: ClientSession) -> int:
    query = {"type": "HardBounce", "messagestream": "outbound"}
    page = await call(session, "list_all_postmark_bounces", query)
    bounce_id: int = page["Bounces"][0]["ID"]
    return bounce_id


async def read_dump(session: ClientSession, bounce_id: int) -> None:
    await call(session, "get_single_postmark_bounce_dump_by_id", {"id": bounce_id})


@pytest.mark.anyio
async def test_direct_user_unknown_bounce_is_reactivated_and_mailed_again(direct: World) -> None:
    async with connect(direct.postmark_url) as session:
        bounce_id = await hard_bounce(session)
        await call(session, "create_a_postmark_bounce_activation", {"id": bounce_id})
        await call(
            session,
            "create_a_postmark_email",
            {"From": "shop@acme.example", "To": "jane.smith@example.net", "Subject": "Your receipt",
             "TextBody": "Your receipt"},
        )

    assert direct.postmark.activations == [USER_UNKNOWN]
    assert direct.postmark.sent[-1]["To"] == "jane.smith@example.net"


@pytest.mark.anyio
async def test_fenced_activation_before_reading_the_dump_is_refused(fenced: World) -> None:
    async with connect(fenced.postmark_url) as session:
        bounce_id = await hard_bounce(session)
        message = await call_error(session, "create_a_postmark_bounce_activation", {"id": bounce_id})

    assert "Blocked by policy postmark-activation-after-dump" in message
    assert fenced.postmark.activations == []


@pytest.mark.anyio
async def test_fenced_activation_of_a_user_unknown_bounce_is_refused_after_the_dump(fenced: World) -> None:
    async with connect(fenced.postmark_url) as session:
        bounce_id = await hard_bounce(session)
        await read_dump(session, bounce_id)
        message = await call_error(session, "create_a_postmark_bounce_activation", {"id": bounce_id})

    assert "Blocked by policy postmark-no-activation-of-dead-mailbox" in message
    assert fenced.postmark.bounces[USER_UNKNOWN].inactive is True


@pytest.mark.anyio
async def test_fenced_soft_bounce_is_reactivated_after_reading_its_dump(fenced: World) -> None:
    async with connect(fenced.postmark_url) as session:
        await read_dump(session, MAILBOX_FULL)
        await call(session, "create_a_postmark_bounce_activation", {"id": MAILBOX_FULL})

    assert fenced.postmark.activations == [MAILBOX_FULL]

"""A clicked link's blob, then the contact it identifies, then a journey enrollment.

The blob travels as ``?blob=`` in ``LastClickUrl``; models tend to "tidy" it (here:
lowercase it), and iPost answers only "Invalid blob".
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from mcp.client.session import ClientSession

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, call_error, connect

SPRING_FOLLOW_UP = "5002"
QUOTED_TOKEN = re.compile(r"pass the token exactly as returned earlier: (\S+)")


async def clicked_blob(session: ClientSession) -> str:
    """The blob of the first VIP contact who clicked, read from the tracked URL."""
    page = await call(session, "list_all_i_post_contacts", {"list_id": "302"})
    url = next(c["LastClickUrl"] for c in page["result"] if c["LastClickUrl"])
    blob: str = parse_qs(urlsplit(url).query)["blob"][0]
    return blob


@pytest.mark.anyio
async def test_direct_edited_blob_fails_without_saying_what_to_send(direct: World) -> None:
    async with connect(direct.ipost_url) as session:
        blob = await clicked_blob(session)
        message = await call_error(session, "get_single_i_post_contacts_blob_by_id", {"id": blob.lower()})

    assert "Invalid blob" in message
    assert blob not in message


@pytest.mark.anyio
async def test_fenced_edited_blob_is_refused_quoting_the_verbatim_token(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        blob = await clicked_blob(session)
        message = await call_error(session, "get_single_i_post_contacts_blob_by_id", {"id": blob.lower()})

    assert "Blocked by policy ipost-blob-verbatim" in message
    quoted = QUOTED_TOKEN.search(message)
    assert quoted is not None and quoted.group(1) == blob


@pytest.mark.anyio
async def test_fenced_click_to_journey_enrolls_the_contact_who_clicked(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        blob = await clicked_blob(session)
        refusal = await call_error(session, "get_single_i_post_contacts_blob_by_id", {"id": blob.lower()})
        corrected = QUOTED_TOKEN.search(refusal)
        assert corrected is not None
        contact = await call(session, "get_single_i_post_contacts_blob_by_id", {"id": corrected.group(1)})
        await call(
            session,
            "create_a_i_post_journey_automation",
            {
                "journey_id": SPRING_FOLLOW_UP,
                "Recipients": [{"Contact_ID": contact["Contact_ID"]}],
                "Properties": {"coupon": "SPRING20", "clicked_mailing": contact["Mailing_ID"]},
            },
        )

    enrolled = fenced.ipost.enrollments[-1]
    assert (enrolled.journey_id, enrolled.contact_id) == (SPRING_FOLLOW_UP, "100001")
    assert enrolled.properties == {"coupon": "SPRING20", "clicked_mailing": fenced.ipost.mailing_id}

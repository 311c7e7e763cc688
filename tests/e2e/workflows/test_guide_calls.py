"""The guides' own example calls, as written, through mcpfence: forwarded and working.

The guides use integer ids (journey 412, contact 7765) and blobs of their own shape
(``encAbc890XYZ``); a rule written against the demo's shapes refused them once.
"""

from __future__ import annotations

import pytest

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, connect

UPDATE = "update_a_i_post_contact_by_id"
JOHN = "100001"


@pytest.mark.anyio
async def test_fenced_the_guides_journey_call_enrolls_contact_7765(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        guide_call = {"journey_id": 412, "Recipients": [{"Contact_ID": 7765}]}
        answer = await call(session, "create_a_i_post_journey_automation", guide_call)

    assert answer["journey_name"] == "Spring re-engagement"
    assert [(e.journey_id, e.contact_id) for e in fenced.ipost.enrollments] == [("412", "7765")]


@pytest.mark.anyio
@pytest.mark.parametrize(("blob", "contact"), [("encAbc890XYZ", "7765"), ("xyz123encBlobData", JOHN)])
async def test_fenced_the_guides_example_blobs_are_forwarded(fenced: World, blob: str, contact: str) -> None:
    async with connect(fenced.ipost_url) as session:
        await call(session, "list_all_i_post_contacts", {"limit": 50})  # the session has seen other blobs
        found = await call(session, "get_single_i_post_contacts_blob_by_id", {"id": blob})

    assert found["Contact_ID"] == contact


@pytest.mark.anyio
async def test_fenced_a_dedicated_opt_out_works_where_a_status_alone_is_applied(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        await call(session, UPDATE, {"id": JOHN, "GlobalEmailStatus": False})

    assert fenced.ipost.contacts[JOHN].global_email_status is False


@pytest.mark.anyio
async def test_fenced_an_opt_out_with_the_unchanged_email_works_where_status_needs_email(
    fenced: World,
) -> None:
    fenced.ipost.status_needs_email = True
    async with connect(fenced.ipost_url) as session:
        await call(session, "get_single_i_post_contact_by_id", {"id": JOHN})
        await call(session, UPDATE, {"id": JOHN, "Email": "john.doe@example.com", "GlobalEmailStatus": False})

    assert fenced.ipost.contacts[JOHN].global_email_status is False
    assert fenced.ipost.contacts[JOHN].email == "john.doe@example.com"

"""Edit a contact's profile: the partial update that carries Email or a null status.

iPost re-subscribes a contact whenever an update carries Email, and opts it out on
a null status; both happen without an error.
"""

from __future__ import annotations

import pytest

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, call_error, connect

JOHN, MARIA = "100001", "100002"  # John is subscribed; Maria opted out of email
UPDATE = "update_a_i_post_contact_by_id"
MARIA_EDIT = {"id": MARIA, "Email": "maria.garcia@example.com", "LastName": "Garcia-Lopez"}
NULL_STATUS = {"id": JOHN, "FirstName": "Johnny", "GlobalEmailStatus": None}


@pytest.mark.anyio
async def test_direct_unchanged_email_resubscribes_an_opted_out_contact(direct: World) -> None:
    async with connect(direct.ipost_url) as session:
        await call(session, UPDATE, MARIA_EDIT)

    assert direct.ipost.contacts[MARIA].global_email_status is True


@pytest.mark.anyio
async def test_fenced_unchanged_email_keeps_the_opt_out_read_earlier(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        await call(session, "get_single_i_post_contact_by_id", {"id": MARIA})
        updated = await call(session, UPDATE, MARIA_EDIT)

    assert updated["LastName"] == "Garcia-Lopez"
    assert fenced.ipost.contacts[MARIA].global_email_status is False


@pytest.mark.anyio
async def test_fenced_email_update_of_an_unread_contact_is_refused(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        message = await call_error(session, UPDATE, MARIA_EDIT)

    assert "Blocked by policy ipost-no-silent-resubscribe" in message
    assert fenced.ipost.contacts[MARIA].last_name == "Garcia"


@pytest.mark.anyio
async def test_direct_null_status_opts_the_contact_out(direct: World) -> None:
    async with connect(direct.ipost_url) as session:
        await call(session, UPDATE, NULL_STATUS)

    assert direct.ipost.contacts[JOHN].global_email_status is False


@pytest.mark.anyio
async def test_fenced_null_status_is_refused(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        message = await call_error(session, UPDATE, NULL_STATUS)

    assert "GlobalEmailStatus must not be null" in message
    assert fenced.ipost.contacts[JOHN].global_email_status is True

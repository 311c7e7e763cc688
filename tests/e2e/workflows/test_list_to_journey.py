"""List the newsletter contacts, keep the ones with GlobalEmailStatus true, enroll them
in a journey with merge Properties.

iPost enrolls opted-out contacts and stores nested Properties as sent; an agent
that skips the filter, or nests its Properties, does harm without an error.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client.session import ClientSession

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, call_error, connect

WELCOME = "5001"
ENROLL = "create_a_i_post_journey_automation"
FLAT = {"coupon": "SPRING20", "discount_pct": 20}
NESTED = {"offer": {"coupon": "SPRING20", "discount_pct": 20}}


async def first_page(session: ClientSession) -> list[dict[str, Any]]:
    """The first five newsletter contacts: John, Maria (opted out), Wei, Aisha, Liam (opted out)."""
    page = await call(session, "list_all_i_post_contacts", {"list_id": "301", "limit": 5})
    contacts: list[dict[str, Any]] = page["result"]
    return contacts


def enrollment(contacts: list[dict[str, Any]], properties: dict[str, Any]) -> dict[str, Any]:
    recipients = [{"Contact_ID": c["Contact_ID"]} for c in contacts]
    return {"journey_id": WELCOME, "Recipients": recipients, "Properties": properties}


def subscribed(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in contacts if c["GlobalEmailStatus"] is True]


@pytest.mark.anyio
async def test_direct_unfiltered_journey_enrolls_opted_out_contacts(direct: World) -> None:
    async with connect(direct.ipost_url) as session:
        contacts = await first_page(session)
        await call(session, ENROLL, enrollment(contacts, FLAT))

    enrolled = {e.contact_id for e in direct.ipost.enrollments}
    assert {"100002", "100005"} <= enrolled


@pytest.mark.anyio
async def test_direct_journey_stores_nested_properties(direct: World) -> None:
    async with connect(direct.ipost_url) as session:
        contacts = subscribed(await first_page(session))
        await call(session, ENROLL, enrollment(contacts, NESTED))

    assert direct.ipost.enrollments[0].properties == NESTED


@pytest.mark.anyio
async def test_fenced_unfiltered_journey_is_refused_naming_the_opted_out(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        contacts = await first_page(session)
        message = await call_error(session, ENROLL, enrollment(contacts, FLAT))

    assert "Blocked by policy ipost-journey-skips-opted-out" in message
    assert "100002, 100005" in message
    assert fenced.ipost.enrollments == []


@pytest.mark.anyio
async def test_fenced_nested_properties_are_refused(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        contacts = subscribed(await first_page(session))
        message = await call_error(session, ENROLL, enrollment(contacts, NESTED))

    assert "Blocked by policy ipost-journey-properties-scalars" in message
    assert fenced.ipost.enrollments == []


@pytest.mark.anyio
async def test_fenced_filtered_journey_with_flat_properties_enrolls_the_subscribed(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        contacts = subscribed(await first_page(session))
        await call(session, ENROLL, enrollment(contacts, FLAT))

    assert [e.contact_id for e in fenced.ipost.enrollments] == ["100001", "100003", "100004"]
    assert all(e.properties == FLAT for e in fenced.ipost.enrollments)

"""Compliance suppression of mixed-case emails, then a status check.

The MD5 list hashes each email exactly as given; the contact is stored lowercase.
"""

from __future__ import annotations

import pytest

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, connect

JOHN = "100001"
AS_TYPED = ["John.Doe@Example.com "]


async def suppress_then_check(url: str) -> dict[str, object]:
    async with connect(url) as session:
        await call(session, "create_a_i_post_md_5_list_contact", {"list_id": "401", "emails": AS_TYPED})
        return await call(session, "get_single_i_post_contact_status_by_id", {"id": JOHN})


@pytest.mark.anyio
async def test_direct_mixed_case_suppression_leaves_the_contact_mailable(direct: World) -> None:
    status = await suppress_then_check(direct.ipost_url)

    assert status["Suppressed"] is False


@pytest.mark.anyio
async def test_fenced_mixed_case_suppression_suppresses_the_contact(fenced: World) -> None:
    status = await suppress_then_check(fenced.ipost_url)

    assert status["Suppressed"] is True
    assert status["SuppressionLists"] == ["401"]

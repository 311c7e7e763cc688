"""What a model sends instead: each rule against other spellings of the same value.

Every row is one variant a model really produces ("null" for null, "40004" for 40004,
an array as JSON text, a key in another case...). Direct, the demo upstream accepts it
and the harm happens (the MCP SDK server coerces the value); through mcpfence it is
refused, or rewritten to the safe form, and the upstream's state shows no harm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from examples.upstreams.ipost import md5_hex
from tests.e2e.workflows.conftest import World
from tests.examples.client import call_error, connect

JOHN, MARIA, JANE = "100001", "100002", "7765"  # subscribed; opted out of email; the guides' contact
UPDATE = "update_a_i_post_contact_by_id"
BULK = "i_post_list_contacts_bulk_create"
MD5 = "create_a_i_post_md_5_list_contact"
JOURNEY = "create_a_i_post_journey_automation"
TEMPLATED = "create_a_postmark_templated_email"
EMAIL = "create_a_postmark_email"
READ_MARIA = ("get_single_i_post_contact_by_id", {"id": MARIA})
NEWSLETTER = {"From": "news@acme.example", "To": "john.doe@example.com", "TemplateModel": {
    "name": "John", "headline": "Spring", "unsubscribe_url": "https://acme.example/u"}}
LIST_UNSUBSCRIBE = '[{"Name": "List-Unsubscribe", "Value": "<https://acme.example/u>"}]'


def john_opted_out(world: World) -> bool:
    return world.ipost.contacts[JOHN].global_email_status is False


def maria_enrolled(world: World) -> bool:
    return any(e.contact_id == MARIA for e in world.ipost.enrollments)


def unlowered_hash_stored(address: str) -> Callable[[World], bool]:
    return lambda world: md5_hex(address) in world.ipost.lists["401"].hashes


def newsletter_on_outbound(world: World) -> bool:
    return any(m["MessageStream"] == "outbound" and (
        m.get("TemplateId") == 40004 or "Headers" in m) for m in world.postmark.sent)


def dead_mailbox_reactivated(world: World) -> bool:
    return 692560173 in world.postmark.activations


@dataclass(frozen=True)
class Variant:
    """One model-style call, the calls before it, and how to see the harm upstream."""

    name: str
    vendor: str
    tool: str
    args: dict[str, Any]
    harm: Callable[[World], bool]
    before: tuple[tuple[str, dict[str, Any]], ...] = field(default=())
    rewritten: bool = False  # through mcpfence the call is forwarded in its safe form, not refused

    def url(self, world: World) -> str:
        return world.ipost_url if self.vendor == "ipost" else world.postmark_url


VARIANTS = [
    Variant("status as the string null", "ipost", UPDATE, {"id": JOHN, "GlobalEmailStatus": "null"},
            john_opted_out),
    Variant("status as null padded with spaces", "ipost", UPDATE, {"id": JOHN, "GlobalEmailStatus": " null "},
            john_opted_out),
    Variant("status as the string false with an edit", "ipost", UPDATE,
            {"id": JOHN, "FirstName": "Johnny", "GlobalEmailStatus": "false"}, john_opted_out),
    Variant("status as the string no with an edit", "ipost", UPDATE,
            {"id": JOHN, "FirstName": "Johnny", "GlobalEmailStatus": "no"}, john_opted_out),
    Variant("status as the number 0 with an edit", "ipost", UPDATE,
            {"id": JOHN, "FirstName": "Johnny", "GlobalEmailStatus": 0}, john_opted_out),
    Variant("status as the string 0 with an integer id", "ipost", UPDATE,
            {"id": 100001, "FirstName": "Johnny", "GlobalEmailStatus": "0"}, john_opted_out),
    Variant("status as text inside bulk create", "ipost", BULK,
            {"list_id": 301, "contacts": [{"Email": "john.doe@example.com", "GlobalEmailStatus": "false"}]},
            john_opted_out),
    Variant("bulk create contacts as JSON text", "ipost", BULK,
            {"list_id": "301", "contacts": '[{"Email": "john.doe@example.com", "GlobalEmailStatus": null}]'},
            john_opted_out),
    Variant("md5 emails as JSON text", "ipost", MD5,
            {"list_id": "401", "emails": '["John.Doe@Example.com"]'},
            unlowered_hash_stored("John.Doe@Example.com")),
    Variant("md5 entry with non-ASCII capitals", "ipost", MD5,
            {"list_id": 401, "emails": ["JÖRG@Example.COM"]}, unlowered_hash_stored("JÖRG@Example.COM"),
            rewritten=True),
    Variant("md5 entry with a display name", "ipost", MD5,
            {"list_id": "401", "emails": ["John <John.Doe@Example.com>"]},
            unlowered_hash_stored("John <John.Doe@Example.com>")),
    Variant("md5 entry with two addresses", "ipost", MD5,
            {"list_id": "401", "emails": ["John.Doe@Example.com, Maria.Garcia@Example.com"]},
            unlowered_hash_stored("John.Doe@Example.com, Maria.Garcia@Example.com")),
    Variant("journey recipient read by text id, enrolled by number", "ipost", JOURNEY,
            {"journey_id": 412, "Recipients": [{"Contact_ID": 100002}]}, maria_enrolled, (READ_MARIA,)),
    Variant("journey recipient enrolled by Email in another case", "ipost", JOURNEY,
            {"journey_id": "5002", "Recipients": [{"Email": " Maria.Garcia@Example.com"}]}, maria_enrolled,
            (READ_MARIA,)),
    Variant("journey recipients as JSON text", "ipost", JOURNEY,
            {"journey_id": "5002", "Recipients": '[{"Contact_ID": "100002"}]'}, maria_enrolled,
            (READ_MARIA,)),
    Variant("newsletter template id as text on outbound", "postmark", TEMPLATED,
            {**NEWSLETTER, "TemplateId": "40004", "MessageStream": "outbound"}, newsletter_on_outbound),
    Variant("newsletter template id as a decimal on outbound", "postmark", TEMPLATED,
            {**NEWSLETTER, "TemplateId": 40004.0, "MessageStream": "outbound"}, newsletter_on_outbound),
    Variant("newsletter template id as padded text, no stream", "postmark", TEMPLATED,
            {**NEWSLETTER, "TemplateId": " 40004 "}, newsletter_on_outbound),
    Variant("List-Unsubscribe headers as JSON text on outbound", "postmark", EMAIL,
            {"From": "news@acme.example", "To": "john.doe@example.com", "Subject": "Spring", "TextBody": "Hi",
             "MessageStream": "outbound", "Headers": LIST_UNSUBSCRIBE}, newsletter_on_outbound),
    Variant("batch-only Messages on a single send without a stream", "postmark", EMAIL,
            {"From": "news@acme.example", "To": "john.doe@example.com", "Subject": "Spring", "TextBody": "Hi",
             "Headers": [{"Name": "List-Unsubscribe", "Value": "<u>"}], "Messages": []},
            newsletter_on_outbound),
    Variant("dead mailbox read by text id, reactivated by number", "postmark",
            "create_a_postmark_bounce_activation", {"id": 692560173}, dead_mailbox_reactivated,
            (("get_single_postmark_bounce_dump_by_id", {"id": "692560173"}),)),
]


async def run(world: World, variant: Variant, stop_early: bool = False) -> tuple[bool, str]:
    """Make the variant's calls; whether the last was refused as a tool error, and its text.

    ``stop_early``: a refusal of a call before the last one ends the variant there (the
    argument-schema check may refuse the first wrong spelling, before a policy sees it).
    """
    async with connect(variant.url(world)) as session:
        for tool, args in (*variant.before, (variant.tool, variant.args)):
            result = await session.call_tool(tool, args)
            if result.is_error and stop_early:
                break
            if (tool, args) != (variant.tool, variant.args):
                assert not result.is_error
    text = " ".join(getattr(block, "text", "") for block in result.content)
    return bool(result.is_error), text


each_variant = pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)


@pytest.mark.anyio
@each_variant
async def test_direct_the_upstream_accepts_the_variant_and_the_harm_happens(
    direct: World, variant: Variant
) -> None:
    refused, text = await run(direct, variant)

    assert not refused, text
    assert variant.harm(direct)


async def assert_caught(world: World, variant: Variant, stop_early: bool) -> None:
    refused, text = await run(world, variant, stop_early)

    assert not variant.harm(world)
    if variant.rewritten:
        assert not refused, text
    else:
        assert refused and text.startswith("Blocked by policy "), text


@pytest.mark.anyio
@each_variant
async def test_fenced_the_variant_is_caught_and_the_upstream_shows_no_harm(
    fenced: World, variant: Variant
) -> None:
    await assert_caught(fenced, variant, stop_early=True)


@pytest.mark.anyio
@each_variant
async def test_the_packs_alone_catch_the_variant_without_the_argument_check(
    packs_alone: World, variant: Variant
) -> None:
    await assert_caught(packs_alone, variant, stop_early=False)


@pytest.mark.anyio
async def test_fenced_a_display_name_refusal_says_what_to_send_and_that_works(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        named = {"list_id": "401", "emails": ["John <John.Doe@Example.com>"]}
        message = await call_error(session, MD5, named)
        assert 'Send emails: ["john.doe@example.com"] instead' in message
        await session.call_tool(MD5, {"list_id": "401", "emails": ["john.doe@example.com"]})
        status = await session.call_tool("get_single_i_post_contact_status_by_id", {"id": JOHN})

    assert status.structured_content is not None and status.structured_content["Suppressed"] is True


@pytest.mark.anyio
async def test_fenced_non_ascii_capitals_are_lowercased_before_hashing(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        result = await session.call_tool(MD5, {"list_id": 401, "emails": ["JÖRG@Example.COM"]})

    assert not result.is_error
    assert md5_hex("jörg@example.com") in fenced.ipost.lists["401"].hashes


NEW_CONTACT = "ann.new@example.com"


@pytest.mark.anyio
async def test_fenced_a_well_formed_bulk_create_every_policy_passes_reaches_the_upstream(
    fenced: World,
) -> None:
    """The call every policy of the tool holds for unchanged (decided on the planned path)."""
    args = {"list_id": 301, "contacts": [{"Email": NEW_CONTACT, "GlobalEmailStatus": True}]}
    async with connect(fenced.ipost_url) as session:
        result = await session.call_tool(BULK, args)

    assert not result.is_error
    contact = fenced.ipost.contact_by_email(NEW_CONTACT)
    assert contact is not None and contact.global_email_status is True and "301" in contact.lists


@pytest.mark.anyio
@pytest.mark.parametrize("status", ["true", 1, "1", "yes"])
async def test_fenced_bulk_create_refuses_a_status_spelled_other_than_a_bool_and_creates_nothing(
    fenced: World, status: object
) -> None:
    args = {"list_id": 301, "contacts": [{"Email": NEW_CONTACT, "GlobalEmailStatus": status}]}
    async with connect(fenced.ipost_url) as session:
        result = await session.call_tool(BULK, args)

    assert result.is_error
    assert fenced.ipost.contact_by_email(NEW_CONTACT) is None

"""Method kinds and tag filters decide which tools a route exposes.

See docs/reference/access.md#exposure-filters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mcpfence.access.exposure import Exposure, tool_kind

TAGS = {"contacts": ["*contact*"], "journeys": ["*journey*", "send_*"]}


@pytest.mark.parametrize(
    ("name", "annotations", "kind"),
    [
        ("list_contacts", None, "read"),
        ("get_contact", {}, "read"),
        ("search_contacts", None, "read"),
        ("Get_Contact", None, "read"),
        ("create_contact", None, "write"),
        ("update_contact", None, "write"),
        ("delete_contact", None, "write"),
        ("send_email", None, "custom"),
        ("contacts", None, "custom"),
        ("lookup", {"readOnlyHint": True}, "read"),
        ("purge", {"destructiveHint": True}, "write"),
        ("delete_draft", {"readOnlyHint": True}, "read"),
        ("get_and_reset", {"readOnlyHint": False}, "custom"),
        ("get_or_delete", {"readOnlyHint": False, "destructiveHint": True}, "write"),
        ("create_note", {"destructiveHint": False}, "write"),
        ("both", {"readOnlyHint": True, "destructiveHint": True}, "read"),
    ],
)
def test_tool_kind_follows_annotations_then_name_prefixes(
    name: str, annotations: dict[str, Any] | None, kind: str
) -> None:
    assert tool_kind(name, annotations) == kind


def test_read_only_route_allows_read_tools_and_refuses_writes() -> None:
    exposure = Exposure.from_filters(["read"], None, TAGS)
    assert exposure.allows("list_contacts", None)
    assert not exposure.allows("create_contact", None)
    assert not exposure.allows("send_email", None)


def test_no_filters_allow_every_tool() -> None:
    exposure = Exposure.from_filters(None, None, {})
    assert all(exposure.allows(n, None) for n in ("list_a", "create_a", "frobnicate"))


def test_tags_allow_a_tool_matching_any_glob_of_any_listed_tag() -> None:
    exposure = Exposure.from_filters(None, ["contacts", "journeys"], TAGS)
    assert exposure.allows("get_contact", None)
    assert exposure.allows("send_welcome", None)
    assert not exposure.allows("list_campaigns", None)


def test_unlisted_tags_do_not_widen_the_filter() -> None:
    exposure = Exposure.from_filters(None, ["contacts"], TAGS)
    assert not exposure.allows("list_journeys", None)


def test_methods_and_tags_must_both_hold() -> None:
    exposure = Exposure.from_filters(["read"], ["contacts"], TAGS)
    assert exposure.allows("list_contacts", None)
    assert not exposure.allows("delete_contact", None)
    assert not exposure.allows("list_journeys", None)


def test_refusal_names_the_filter() -> None:
    exposure = Exposure.from_filters(["read"], ["contacts"], TAGS)
    assert exposure.refusal("create_contact", None) == (
        "tool 'create_contact' is a write tool; this route exposes only: read"
    )
    assert exposure.refusal("list_journeys", None) == (
        "tool 'list_journeys' matches none of this route's tags: contacts"
    )
    assert exposure.refusal("list_contacts", None) is None


def test_cached_decision_still_respects_annotations_seen_later() -> None:
    exposure = Exposure.from_filters(["read"], None, TAGS)
    assert not exposure.allows("purge_cache", None)
    assert exposure.allows("purge_cache", {"readOnlyHint": True})


def test_unknown_tag_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown tags: billing"):
        Exposure.from_filters(None, ["billing"], TAGS)


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown methods: admin"):
        Exposure.from_filters(["read", "admin"], None, TAGS)


@pytest.mark.parametrize(
    ("methods", "allowed"),
    [
        (["get"], {"get_contact"}),
        (["list"], {"list_contacts"}),
        (["create"], {"create_contact"}),
        (["update"], {"update_contact"}),
        (["delete"], {"delete_contact"}),
        (["read", "update"], {"get_contact", "list_contacts", "search_contacts", "update_contact"}),
        (["list", "custom"], {"list_contacts", "send_email"}),
    ],
)
def test_finer_method_names_select_tools_by_their_prefix(methods: list[str], allowed: set[str]) -> None:
    names = ["get_contact", "list_contacts", "search_contacts", "create_contact", "update_contact",
             "delete_contact", "send_email"]
    exposure = Exposure.from_filters(methods, None, TAGS)

    assert {n for n in names if exposure.allows(n, None)} == allowed


def test_a_finer_name_never_selects_a_tool_of_another_kind() -> None:
    exposure = Exposure.from_filters(["get", "delete"], None, TAGS)

    assert not exposure.allows("get_and_reset", {"readOnlyHint": False})
    assert not exposure.allows("delete_draft", {"readOnlyHint": True})


def test_a_refusal_names_the_finer_methods_the_route_exposes() -> None:
    exposure = Exposure.from_filters(["read", "update"], None, TAGS)

    assert exposure.refusal("create_contact", None) == (
        "tool 'create_contact' is a write tool; this route exposes only: read, update"
    )


DEMO_TOOLS = {
    "list_all_i_post_contacts", "get_single_i_post_contact_by_id", "update_a_i_post_contact_by_id",
    "get_single_i_post_contacts_blob_by_id", "update_a_i_post_contacts_blob_by_id",
    "i_post_list_contacts_bulk_create", "create_a_i_post_md_5_list_contact",
    "get_single_i_post_contact_status_by_id", "create_a_i_post_journey_automation",
    "create_a_i_post_process_automations_start", "get_single_i_post_data_table_attribute_by_id",
    "i_post_datatable_records_bulk_update", "create_a_postmark_email", "create_a_postmark_templated_email",
    "create_a_postmark_batch_email", "list_all_postmark_bounces", "get_single_postmark_bounce_dump_by_id",
    "create_a_postmark_bounce_activation", "get_single_postmark_delivery_stat_by_id",
}


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("contacts", {"list_all_i_post_contacts", "get_single_i_post_contact_by_id",
                      "update_a_i_post_contact_by_id", "get_single_i_post_contacts_blob_by_id",
                      "update_a_i_post_contacts_blob_by_id", "i_post_list_contacts_bulk_create",
                      "get_single_i_post_contact_status_by_id"}),
        ("lists", {"i_post_list_contacts_bulk_create", "create_a_i_post_md_5_list_contact"}),
        ("journeys", {"create_a_i_post_journey_automation"}),
        ("automations", {"create_a_i_post_process_automations_start"}),
        ("datatables", {"get_single_i_post_data_table_attribute_by_id",
                        "i_post_datatable_records_bulk_update"}),
        ("bounces", {"list_all_postmark_bounces", "get_single_postmark_bounce_dump_by_id",
                     "create_a_postmark_bounce_activation"}),
        ("outbound_messages", {"create_a_postmark_email", "create_a_postmark_templated_email",
                               "create_a_postmark_batch_email"}),
    ],
)
def test_the_demo_config_defines_the_managed_mcp_tags(tag: str, expected: set[str]) -> None:
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "demo.yaml").read_text())
    exposure = Exposure.from_filters(None, [tag], config["tags"])

    assert {name for name in DEMO_TOOLS if exposure.allows(name, None)} == expected

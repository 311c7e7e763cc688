"""The iPost-like demo upstream, driven by the official SDK client over real HTTP.

Tests named for a footgun document the harm mcpfence's iPost policy pack prevents:
the upstream itself accepts the call and does the damage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from examples.upstreams.common import RequestBudget, http_app
from examples.upstreams.ipost import MAX_PAGE, OVER_BUDGET, IPostStore, build_server
from tests.examples.client import call, call_error, connect
from tests.servers import serve_asgi

JOHN, MARIA, LIAM = "100001", "100002", "100005"  # opted in; email opted out; both opted out


@pytest.fixture
def store() -> IPostStore:
    return IPostStore.seeded(filler_contacts=30)


@pytest.fixture
def url(store: IPostStore) -> Iterator[str]:
    with serve_asgi(http_app(build_server(store))) as base:
        yield base + "/mcp"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# --------------------------------------------------------------------------- catalogue


@pytest.mark.anyio
async def test_tools_use_the_managed_mcp_names(url: str) -> None:
    async with connect(url) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
    assert names == {
        "list_all_i_post_contacts",
        "get_single_i_post_contact_by_id",
        "update_a_i_post_contact_by_id",
        "get_single_i_post_contacts_blob_by_id",
        "update_a_i_post_contacts_blob_by_id",
        "i_post_list_contacts_bulk_create",
        "create_a_i_post_md_5_list_contact",
        "get_single_i_post_contact_status_by_id",
        "create_a_i_post_journey_automation",
        "create_a_i_post_process_automations_start",
        "get_single_i_post_data_table_attribute_by_id",
        "i_post_datatable_records_bulk_update",
    }


@pytest.mark.anyio
async def test_get_and_list_tools_are_read_only_and_updates_destructive(url: str) -> None:
    async with connect(url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    for name, tool in tools.items():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is name.startswith(("get_", "list_")), name
    assert tools["update_a_i_post_contact_by_id"].annotations is not None
    assert tools["update_a_i_post_contact_by_id"].annotations.destructive_hint is True


@pytest.mark.anyio
async def test_update_schema_declares_status_fields(url: str) -> None:
    async with connect(url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    properties = tools["update_a_i_post_contact_by_id"].input_schema["properties"]
    assert {"id", "Email", "Mobile", "GlobalEmailStatus", "GlobalMobileStatus", "CustomFields"} <= set(
        properties
    )
    assert tools["update_a_i_post_contact_by_id"].input_schema["required"] == ["id"]


# --------------------------------------------------------------------------- contacts


@pytest.mark.anyio
async def test_list_contacts_pages_with_a_cursor(url: str) -> None:
    async with connect(url) as session:
        first = await call(session, "list_all_i_post_contacts", {"limit": 20})
        second = await call(
            session, "list_all_i_post_contacts", {"limit": 20, "cursor": first["next_cursor"]}
        )
    assert first["total"] == 37
    assert len(first["result"]) == 20
    assert len(second["result"]) == 17
    assert second["next_cursor"] is None
    ids = [c["Contact_ID"] for c in first["result"] + second["result"]]
    assert len(set(ids)) == 37


@pytest.mark.anyio
async def test_list_contacts_pages_up_to_10000(url: str) -> None:
    async with connect(url) as session:
        page = await call(session, "list_all_i_post_contacts", {"limit": MAX_PAGE})
        too_many = await call_error(session, "list_all_i_post_contacts", {"limit": MAX_PAGE + 1})
    assert len(page["result"]) == page["total"] == 37
    assert page["next_cursor"] is None
    assert "less than or equal to 10000" in too_many


@pytest.mark.anyio
async def test_list_contacts_filters_by_list(url: str) -> None:
    async with connect(url) as session:
        vip = await call(session, "list_all_i_post_contacts", {"list_id": "302"})
    assert {c["Contact_ID"] for c in vip["result"]} == {"100001", "100004", "100006"}


@pytest.mark.anyio
async def test_list_contacts_embeds_the_blob_in_tracked_urls(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        page = await call(session, "list_all_i_post_contacts", {"limit": 1})
    click_url = page["result"][0]["LastClickUrl"]
    assert click_url.startswith("https://shop.example.com/spring-sale?")
    assert parse_qs(urlsplit(click_url).query)["blob"] == [store.blob_for(JOHN)]


@pytest.mark.anyio
async def test_get_contact_returns_statuses_and_custom_fields(url: str) -> None:
    async with connect(url) as session:
        contact = await call(session, "get_single_i_post_contact_by_id", {"id": MARIA})
    assert contact["Email"] == "maria.garcia@example.com"
    assert contact["GlobalEmailStatus"] is False
    assert contact["GlobalMobileStatus"] is True
    assert contact["CustomFields"] == {"City": "Miami", "LoyaltyTier": "Silver"}


@pytest.mark.anyio
async def test_unknown_contact_is_a_not_found_error(url: str) -> None:
    async with connect(url) as session:
        message = await call_error(session, "get_single_i_post_contact_by_id", {"id": "999999"})
    assert "404" in message


@pytest.mark.anyio
async def test_footgun_update_with_unchanged_email_resubscribes_an_opted_out_contact(
    url: str, store: IPostStore
) -> None:
    async with connect(url) as session:
        await call(
            session,
            "update_a_i_post_contact_by_id",
            {"id": MARIA, "Email": "maria.garcia@example.com", "FirstName": "María"},
        )
    assert store.contacts[MARIA].global_email_status is True


@pytest.mark.anyio
async def test_footgun_null_email_status_opts_the_contact_out(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        contact = await call(
            session, "update_a_i_post_contact_by_id", {"id": JOHN, "GlobalEmailStatus": None}
        )
    assert contact["GlobalEmailStatus"] is False
    assert store.contacts[JOHN].global_email_status is False


@pytest.mark.anyio
async def test_false_mobile_status_opts_the_contact_out_of_sms(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        await call(session, "update_a_i_post_contact_by_id", {"id": JOHN, "GlobalMobileStatus": False})
    assert store.contacts[JOHN].global_mobile_status is False
    assert store.contacts[JOHN].global_email_status is True


@pytest.mark.anyio
async def test_mobile_sets_mobile_status_true(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        await call(session, "update_a_i_post_contact_by_id", {"id": LIAM, "Mobile": "+35315550199"})
    assert store.contacts[LIAM].global_mobile_status is True
    assert store.contacts[LIAM].global_email_status is False


@pytest.mark.anyio
async def test_email_with_explicit_false_status_stays_opted_out(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        await call(
            session,
            "update_a_i_post_contact_by_id",
            {"id": MARIA, "Email": "maria.g@example.com", "GlobalEmailStatus": False},
        )
    assert store.contacts[MARIA].email == "maria.g@example.com"
    assert store.contacts[MARIA].global_email_status is False


@pytest.mark.anyio
async def test_update_without_email_or_status_leaves_statuses_alone(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        contact = await call(
            session, "update_a_i_post_contact_by_id", {"id": MARIA, "CustomFields": {"LoyaltyTier": "Gold"}}
        )
    assert contact["GlobalEmailStatus"] is False
    assert store.contacts[MARIA].custom_fields == {"City": "Miami", "LoyaltyTier": "Gold"}


# --------------------------------------------------------------------------- blobs


@pytest.mark.anyio
async def test_blob_from_a_tracked_url_identifies_the_contact(url: str) -> None:
    async with connect(url) as session:
        page = await call(session, "list_all_i_post_contacts", {"limit": 1})
        blob = parse_qs(urlsplit(page["result"][0]["LastClickUrl"]).query)["blob"][0]
        contact = await call(session, "get_single_i_post_contacts_blob_by_id", {"id": blob})
    assert contact["Contact_ID"] == JOHN
    assert contact["Mailing_ID"] == "M-20261118-SPRING"


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda b: b.swapcase(), id="case-changed"),
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b + "==", id="padded"),
        pytest.param(lambda b: b.replace("_", "/").replace("-", "+") + "%3D", id="re-encoded"),
        pytest.param(lambda b: b[:10] + ("A" if b[10] != "A" else "B") + b[11:], id="one-char"),
    ],
)
@pytest.mark.anyio
async def test_footgun_an_edited_blob_fails_to_decrypt(
    url: str, store: IPostStore, edit: Callable[[str], str]
) -> None:
    edited = edit(store.blob_for(JOHN))
    async with connect(url) as session:
        message = await call_error(session, "get_single_i_post_contacts_blob_by_id", {"id": edited})
    assert "Invalid blob" in message


@pytest.mark.anyio
async def test_update_by_blob_follows_the_same_status_rules(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        await call(
            session,
            "update_a_i_post_contacts_blob_by_id",
            {"id": store.blob_for(MARIA), "Email": "maria.garcia@example.com"},
        )
    assert store.contacts[MARIA].global_email_status is True


# --------------------------------------------------------------------------- bulk create


@pytest.mark.anyio
async def test_bulk_create_adds_new_subscribed_contacts_to_the_list(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        result = await call(
            session,
            "i_post_list_contacts_bulk_create",
            {"list_id": "302", "contacts": [{"Email": "new.person@example.com", "FirstName": "New"}]},
        )
    [created] = result["created"]
    assert store.contacts[created].email == "new.person@example.com"
    assert store.contacts[created].global_email_status is True
    assert store.contacts[created].lists == ["302"]


@pytest.mark.anyio
async def test_footgun_bulk_create_with_an_existing_email_resubscribes_it(
    url: str, store: IPostStore
) -> None:
    async with connect(url) as session:
        result = await call(
            session,
            "i_post_list_contacts_bulk_create",
            {"list_id": "302", "contacts": [{"Email": "Maria.Garcia@example.com"}]},
        )
    assert result["updated"] == [MARIA]
    assert store.contacts[MARIA].global_email_status is True


@pytest.mark.anyio
async def test_bulk_create_reports_progress(url: str) -> None:
    reports: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total))

    contacts = [{"Email": f"bulk{n}@example.com"} for n in range(250)]
    async with connect(url) as session:
        await session.call_tool(
            "i_post_list_contacts_bulk_create",
            {"list_id": "301", "contacts": contacts},
            progress_callback=on_progress,
        )
    assert reports == [(100, 250), (200, 250), (250, 250)]


# --------------------------------------------------------------------------- MD5 suppression


@pytest.mark.anyio
async def test_footgun_md5_list_hashes_each_email_exactly_as_given(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        result = await call(
            session,
            "create_a_i_post_md_5_list_contact",
            {"list_id": "401", "emails": ["John.Doe@Example.com"]},
        )
    assert result["hashes"] == [md5("John.Doe@Example.com")]
    assert store.lists["401"].hashes == [md5("John.Doe@Example.com")]
    assert md5("john.doe@example.com") not in store.lists["401"].hashes


@pytest.mark.anyio
async def test_footgun_mixed_case_suppression_leaves_the_contact_unsuppressed(url: str) -> None:
    async with connect(url) as session:
        await call(
            session,
            "create_a_i_post_md_5_list_contact",
            {"list_id": "401", "emails": ["John.Doe@Example.com"]},
        )
        status = await call(session, "get_single_i_post_contact_status_by_id", {"id": JOHN})
    assert status["Suppressed"] is False


@pytest.mark.anyio
async def test_lowercased_suppression_suppresses_the_contact(url: str) -> None:
    async with connect(url) as session:
        await call(
            session,
            "create_a_i_post_md_5_list_contact",
            {"list_id": "401", "emails": ["john.doe@example.com"]},
        )
        status = await call(session, "get_single_i_post_contact_status_by_id", {"id": JOHN})
    assert status == {
        "Contact_ID": JOHN,
        "Email": "john.doe@example.com",
        "GlobalEmailStatus": True,
        "GlobalMobileStatus": True,
        "Suppressed": True,
        "SuppressionLists": ["401"],
    }


@pytest.mark.anyio
async def test_md5_entries_need_an_md5_list(url: str) -> None:
    async with connect(url) as session:
        message = await call_error(
            session, "create_a_i_post_md_5_list_contact", {"list_id": "301", "emails": ["a@example.com"]}
        )
    assert "no MD5 list" in message


# --------------------------------------------------------------------------- journeys


@pytest.mark.anyio
async def test_journey_enrolls_recipients_by_contact_id_or_email(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        result = await call(
            session,
            "create_a_i_post_journey_automation",
            {
                "journey_id": "5002",
                "Recipients": [{"Contact_ID": JOHN}, {"Email": "aisha.khan@example.com"}],
                "Properties": {"coupon": "SPRING20"},
            },
        )
    assert [r["Contact_ID"] for r in result["enrolled"]] == [JOHN, "100004"]
    assert [(e.journey_id, e.contact_id, e.properties) for e in store.enrollments] == [
        ("5002", JOHN, {"coupon": "SPRING20"}),
        ("5002", "100004", {"coupon": "SPRING20"}),
    ]


@pytest.mark.anyio
async def test_footgun_journey_enrolls_an_opted_out_contact(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        await call(
            session,
            "create_a_i_post_journey_automation",
            {"journey_id": "5002", "Recipients": [{"Contact_ID": MARIA}]},
        )
    assert [e.contact_id for e in store.enrollments] == [MARIA]
    assert store.contacts[MARIA].global_email_status is False


@pytest.mark.anyio
async def test_footgun_journey_stores_nested_properties_as_sent(url: str, store: IPostStore) -> None:
    properties = {"offer": {"code": "SPRING20", "percent": 20}, "items": ["a", "b"]}
    async with connect(url) as session:
        await call(
            session,
            "create_a_i_post_journey_automation",
            {"journey_id": "5001", "Recipients": [{"Contact_ID": JOHN}], "Properties": properties},
        )
    assert store.enrollments[0].properties == properties


@pytest.mark.anyio
async def test_journey_recipient_with_unknown_email_becomes_a_subscribed_contact(
    url: str, store: IPostStore
) -> None:
    async with connect(url) as session:
        result = await call(
            session,
            "create_a_i_post_journey_automation",
            {"journey_id": "5001", "Recipients": [{"Email": "stranger@example.com"}]},
        )
    new = store.contacts[result["enrolled"][0]["Contact_ID"]]
    assert (new.email, new.global_email_status) == ("stranger@example.com", True)


@pytest.mark.anyio
async def test_journey_recipient_needs_contact_id_or_email(url: str) -> None:
    async with connect(url) as session:
        message = await call_error(
            session, "create_a_i_post_journey_automation", {"journey_id": "5001", "Recipients": [{}]}
        )
    assert "Contact_ID or Email" in message


# --------------------------------------------------------------------------- process automations


@pytest.mark.anyio
async def test_active_process_automation_starts(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        result = await call(session, "create_a_i_post_process_automations_start", {"id": "7001"})
    assert result["status"] == "Started"
    assert store.automations["7001"].runs == 1


@pytest.mark.parametrize("automation", ["7002", "7003"])
@pytest.mark.anyio
async def test_non_active_process_automation_is_rejected(
    url: str, store: IPostStore, automation: str
) -> None:
    async with connect(url) as session:
        message = await call_error(session, "create_a_i_post_process_automations_start", {"id": automation})
    assert "not Active" in message
    assert store.automations[automation].runs == 0


# --------------------------------------------------------------------------- DataTables


@pytest.mark.anyio
async def test_data_table_attributes_describe_the_schema(url: str) -> None:
    async with connect(url) as session:
        schema = await call(session, "get_single_i_post_data_table_attribute_by_id", {"id": "9001"})
    assert schema["KeyAttribute"] == "OrderId"
    assert [a["Name"] for a in schema["Attributes"]] == [
        "OrderId",
        "Contact_ID",
        "OrderTotal",
        "OrderDate",
        "Status",
    ]


@pytest.mark.anyio
async def test_bulk_update_upserts_by_key(url: str, store: IPostStore) -> None:
    records = [{"OrderId": "SO-1001", "Status": "Delivered"}, {"OrderId": "SO-2000", "OrderTotal": 10.0}]
    async with connect(url) as session:
        result = await call(
            session, "i_post_datatable_records_bulk_update", {"id": "9001", "records": records}
        )
    assert (result["created"], result["updated"]) == (1, 1)
    assert store.data_tables["9001"].records["SO-1001"]["Status"] == "Delivered"
    assert store.data_tables["9001"].records["SO-2000"] == {"OrderId": "SO-2000", "OrderTotal": 10.0}


@pytest.mark.anyio
async def test_footgun_bulk_update_silently_drops_undeclared_columns(url: str, store: IPostStore) -> None:
    records = [{"OrderId": "SO-1002", "Status": "Shipped", "TrackingNumber": "1Z999"}]
    async with connect(url) as session:
        result = await call(
            session, "i_post_datatable_records_bulk_update", {"id": "9001", "records": records}
        )
    assert result["updated"] == 1
    assert "TrackingNumber" not in store.data_tables["9001"].records["SO-1002"]


@pytest.mark.anyio
async def test_bulk_update_rows_need_the_key(url: str) -> None:
    async with connect(url) as session:
        message = await call_error(
            session, "i_post_datatable_records_bulk_update", {"id": "9001", "records": [{"Status": "x"}]}
        )
    assert "OrderId" in message


# --------------------------------------------------------------------------- as the guides call it


@pytest.mark.anyio
async def test_the_guides_journey_call_works_as_written(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        guide_call = {"journey_id": 412, "Recipients": [{"Contact_ID": 7765}]}
        enrolled = await call(session, "create_a_i_post_journey_automation", guide_call)
    assert enrolled["journey_id"] == "412"
    assert [(e.journey_id, e.contact_id) for e in store.enrollments] == [("412", "7765")]


@pytest.mark.anyio
async def test_integer_and_string_ids_name_the_same_record(url: str, store: IPostStore) -> None:
    async with connect(url) as session:
        by_int = await call(session, "get_single_i_post_contact_by_id", {"id": 100001})
        by_str = await call(session, "get_single_i_post_contact_by_id", {"id": "100001"})
        await call(session, "update_a_i_post_contact_by_id", {"id": 100001, "FirstName": "Johnny"})
        table = await call(session, "get_single_i_post_data_table_attribute_by_id", {"id": 9001})
        started = await call(session, "create_a_i_post_process_automations_start", {"id": 7001})
        page = await call(session, "list_all_i_post_contacts", {"list_id": 302})
    assert by_int == by_str
    assert store.contacts[JOHN].first_name == "Johnny"
    assert table["DataTable_ID"] == "9001"
    assert started["id"] == "7001"
    assert {c["Contact_ID"] for c in page["result"]} == {"100001", "100004", "100006"}


@pytest.mark.anyio
@pytest.mark.parametrize(("blob", "contact"), [("encAbc890XYZ", "7765"), ("xyz123encBlobData", JOHN)])
async def test_the_guides_example_blobs_are_accepted(url: str, blob: str, contact: str) -> None:
    async with connect(url) as session:
        found = await call(session, "get_single_i_post_contacts_blob_by_id", {"id": blob})
    assert found["Contact_ID"] == contact


@pytest.mark.anyio
async def test_with_status_needs_email_a_status_alone_is_ignored(url: str, store: IPostStore) -> None:
    store.status_needs_email = True
    async with connect(url) as session:
        await call(session, "update_a_i_post_contact_by_id", {"id": JOHN, "GlobalEmailStatus": False})
        unchanged = store.contacts[JOHN].global_email_status
        await call(
            session,
            "update_a_i_post_contact_by_id",
            {"id": JOHN, "Email": "john.doe@example.com", "GlobalEmailStatus": False},
        )
    assert unchanged is True
    assert store.contacts[JOHN].global_email_status is False


def test_over_its_request_budget_the_server_answers_429(store: IPostStore) -> None:
    app = RequestBudget(http_app(build_server(store)), limit=1, window_seconds=60, body=OVER_BUDGET)
    client_info = {"name": "t", "version": "1"}
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client_info},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    with serve_asgi(app) as base, httpx.Client() as client:
        client.post(base + "/mcp", json=initialize, headers=headers)
        refused = client.post(base + "/mcp", json=initialize, headers=headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["status"] == 429

"""DataTable schema, then a bulk update of order rows.

iPost drops columns the table does not declare and still reports success.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.workflows.conftest import World
from tests.examples.client import call, call_error, connect

ORDERS = "9001"
NEW_ORDER = {"OrderId": "SO-1003", "Contact_ID": 100006, "Status": "Processing"}
WITH_CARRIER = {**NEW_ORDER, "ShippingCarrier": "UPS"}
READ_SCHEMA = ("get_single_i_post_data_table_attribute_by_id", {"id": ORDERS})
BULK_UPDATE = "i_post_datatable_records_bulk_update"


def update(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": ORDERS, "records": [record]}


@pytest.mark.anyio
async def test_direct_bulk_update_drops_an_undeclared_column_silently(direct: World) -> None:
    async with connect(direct.ipost_url) as session:
        result = await call(session, BULK_UPDATE, update(WITH_CARRIER))

    assert result["created"] == 1
    assert direct.ipost.data_tables[ORDERS].records["SO-1003"] == NEW_ORDER


@pytest.mark.anyio
async def test_fenced_bulk_update_before_the_schema_is_read_is_refused(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        message = await call_error(session, BULK_UPDATE, update(NEW_ORDER))

    assert "Blocked by policy ipost-datatable-schema-first" in message
    assert "SO-1003" not in fenced.ipost.data_tables[ORDERS].records


@pytest.mark.anyio
async def test_fenced_undeclared_column_is_refused_once_the_schema_is_read(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        await call(session, *READ_SCHEMA)
        message = await call_error(session, BULK_UPDATE, update(WITH_CARRIER))

    assert "Blocked by policy ipost-datatable-declared-columns" in message
    assert "dropped silently: ShippingCarrier" in message
    assert "SO-1003" not in fenced.ipost.data_tables[ORDERS].records


@pytest.mark.anyio
async def test_fenced_declared_columns_are_written_once_the_schema_is_read(fenced: World) -> None:
    async with connect(fenced.ipost_url) as session:
        await call(session, *READ_SCHEMA)
        await call(session, BULK_UPDATE, update(NEW_ORDER))

    assert fenced.ipost.data_tables[ORDERS].records["SO-1003"] == NEW_ORDER

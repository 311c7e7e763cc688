"""The middleware examples: each framework's server, fenced, driven by the official SDK client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from examples.middleware import billing, fastmcp_app, starlette_app
from tests.clients import connect
from tests.servers import serve_asgi

pytestmark = pytest.mark.anyio

EXAMPLES = {"starlette": (starlette_app.app, "/billing/mcp"), "fastmcp": (fastmcp_app.app, "/mcp")}


@pytest.fixture(params=sorted(EXAMPLES), scope="module")
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    app, path = EXAMPLES[request.param]
    with serve_asgi(app) as base:
        yield base + path


@pytest.fixture(autouse=True)
def _forget_refunds() -> None:
    billing.REFUNDS.clear()


async def test_a_refund_within_the_cap_is_made_with_the_canonical_invoice_id(url: str) -> None:
    async with connect(url) as conn:
        result = await conn.session.call_tool("refund", {"invoice_id": " inv-1001", "amount_cents": 1250})
    assert not result.is_error
    assert billing.REFUNDS == [("INV-1001", 1250)]


async def test_a_refund_over_the_cap_is_refused_before_the_server(url: str) -> None:
    async with connect(url) as conn:
        result = await conn.session.call_tool("refund", {"invoice_id": "INV-1002", "amount_cents": 90000})
    assert result.is_error
    assert "refunds over 500.00 need a human" in result.content[0].text  # type: ignore[union-attr]
    assert billing.REFUNDS == []


async def test_an_amount_sent_as_text_is_refused_by_the_argument_check(url: str) -> None:
    async with connect(url) as conn:
        result = await conn.session.call_tool("refund", {"invoice_id": "INV-1002", "amount_cents": "90000"})
    assert result.is_error
    assert "/amount_cents must be an integer" in result.content[0].text  # type: ignore[union-attr]
    assert billing.REFUNDS == []


async def test_the_tool_list_carries_the_guidance(url: str) -> None:
    async with connect(url) as conn:
        (tool,) = (await conn.session.list_tools()).tools
    assert tool.description is not None
    assert tool.description.endswith("Invoice ids are upper case, e.g. INV-1001.")

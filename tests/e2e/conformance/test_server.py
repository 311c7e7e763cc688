"""The conformance server answers as the suite expects, checked with the official SDK client.

The suite itself needs Node (``make conformance``); these tests keep the server honest in the
ordinary pytest run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.server.streamable_http import EventMessage
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ErrorData,
    JSONRPCRequest,
    TextContent,
)

from tests.e2e.conformance.content import JSON_SCHEMA_2020_12
from tests.e2e.conformance.server import MemoryEventStore, build_app
from tests.servers import serve_asgi


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_asgi(build_app()) as base:
        yield f"{base}/mcp"


@asynccontextmanager
async def connect(url: str, **callbacks: Any) -> AsyncIterator[ClientSession]:
    async with (
        streamable_http_client(url) as (read, write),
        ClientSession(read, write, **callbacks) as session,
    ):
        await session.initialize()
        yield session


def texts(content: list[Any]) -> list[str]:
    return [block.text for block in content if isinstance(block, TextContent)]


@pytest.mark.anyio
async def test_simple_text_tool_returns_the_text_the_suite_expects(url: str) -> None:
    async with connect(url) as session:
        result = await session.call_tool("test_simple_text", {})
    assert texts(result.content) == ["This is a simple text response for testing."]


@pytest.mark.anyio
async def test_json_schema_tool_is_listed_with_its_schema_verbatim(url: str) -> None:
    async with connect(url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert tools["json_schema_2020_12_tool"].input_schema == JSON_SCHEMA_2020_12


@pytest.mark.anyio
async def test_error_tool_answers_with_an_error_result(url: str) -> None:
    async with connect(url) as session:
        result = await session.call_tool("test_error_handling", {})
    assert result.is_error
    assert texts(result.content) == ["This tool intentionally returns an error for testing"]


@pytest.mark.anyio
async def test_progress_tool_reports_zero_fifty_and_a_hundred_percent(url: str) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with connect(url) as session:
        await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
    assert seen == [(0, 100), (50, 100), (100, 100)]


@pytest.mark.anyio
async def test_sampling_tool_relays_what_the_client_sampled(url: str) -> None:
    prompts: list[str] = []

    async def sample(context: Any, params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData:
        prompts.extend(texts([message.content for message in params.messages]))
        reply = TextContent(type="text", text="Paris")
        return CreateMessageResult(role="assistant", content=reply, model="test-model")

    async with connect(url, sampling_callback=sample) as session:
        result = await session.call_tool("test_sampling", {"prompt": "Capital of France?"})
    assert prompts == ["Capital of France?"]
    assert texts(result.content) == ["LLM response: Paris"]


@pytest.mark.anyio
async def test_event_store_replays_only_later_events_of_the_same_stream() -> None:
    store = MemoryEventStore()
    message = JSONRPCRequest(jsonrpc="2.0", id=1, method="ping")
    first = await store.store_event("a", message)
    await store.store_event("b", message)
    later = await store.store_event("a", message)
    replayed: list[str] = []

    async def send(event: EventMessage) -> None:
        replayed.append(str(event.event_id))

    assert await store.replay_events_after(first, send) == "a"
    assert replayed == [later]

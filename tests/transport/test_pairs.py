"""Every downstream-upstream transport pair, spoken by the official SDK on both ends.

Downstream: Streamable HTTP and legacy HTTP+SSE. Upstream: Streamable HTTP,
legacy HTTP+SSE and stdio. Each pair must list, call, report progress, deny by
policy, and carry sampling and elicitation from the server to the client and
the client's answer back (docs/reference/transports.md).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from mcp.client.session import ClientRequestContext
from mcp_types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestParams,
    ElicitResult,
    TextContent,
)

from tests.servers import Proxy
from tests.transport.conftest import DOWNSTREAMS, UPSTREAMS, open_session

pytestmark = pytest.mark.anyio

PAIRS = [pytest.param(d, u, id=f"{d}-to-{u}") for d, u in itertools.product(DOWNSTREAMS, UPSTREAMS)]
TOOLS = {"echo", "region", "count", "ask", "sample", "pid", "environment", "shout", "crash"}


def text_of(result: Any) -> str:
    content = result.content[0]
    assert isinstance(content, TextContent)
    return content.text


@pytest.mark.parametrize(("downstream", "upstream"), PAIRS)
async def test_tools_list_names_every_upstream_tool(proxy: Proxy, downstream: str, upstream: str) -> None:
    async with open_session(proxy, upstream, downstream) as session:
        listed = await session.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS


@pytest.mark.parametrize(("downstream", "upstream"), PAIRS)
async def test_tool_call_returns_the_upstream_result(proxy: Proxy, downstream: str, upstream: str) -> None:
    async with open_session(proxy, upstream, downstream) as session:
        result = await session.call_tool("echo", {"message": "héllo ☃"})
    assert not result.is_error
    assert text_of(result) == "héllo ☃"


async def test_a_large_json_answer_reaches_a_legacy_client_whole(proxy: Proxy) -> None:
    """The bridge reads a JSON answer that arrives in many chunks to its end."""
    message = "x" * 200_000  # several 64 KiB chunks, under the 256 KiB argument limit
    async with open_session(proxy, "streamable-http-json", "legacy-sse") as session:
        result = await session.call_tool("echo", {"message": message})
    assert not result.is_error
    assert text_of(result) == message


@pytest.mark.parametrize(("downstream", "upstream"), PAIRS)
async def test_progress_notifications_reach_the_caller(proxy: Proxy, downstream: str, upstream: str) -> None:
    seen: list[float] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with open_session(proxy, upstream, downstream) as session:
        result = await session.call_tool("count", {"steps": 3}, progress_callback=progress)
    assert text_of(result) == "counted to 3"
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(("downstream", "upstream"), PAIRS)
async def test_policy_denial_is_answered_as_a_readable_tool_error(
    proxy: Proxy, downstream: str, upstream: str
) -> None:
    async with open_session(proxy, upstream, downstream) as session:
        result = await session.call_tool("echo", {"message": "say forbidden things"})
    assert result.is_error
    assert text_of(result) == "Blocked by policy no-forbidden-echo: echo must not say forbidden"


@pytest.mark.parametrize(("downstream", "upstream"), PAIRS)
async def test_elicitation_reaches_the_client_and_its_answer_reaches_the_server(
    proxy: Proxy, downstream: str, upstream: str
) -> None:
    questions: list[str] = []

    async def elicit(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        questions.append(params.message)
        return ElicitResult(action="accept", content={"answer": "forty-two"})

    async with open_session(proxy, upstream, downstream, elicitation_callback=elicit) as session:
        result = await session.call_tool("ask", {"question": "what is the answer?"})
    assert questions == ["what is the answer?"]
    assert text_of(result) == "accept: forty-two"


@pytest.mark.parametrize(("downstream", "upstream"), PAIRS)
async def test_sampling_reaches_the_client_and_its_answer_reaches_the_server(
    proxy: Proxy, downstream: str, upstream: str
) -> None:
    async def sample(
        context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        prompt = params.messages[0].content
        assert isinstance(prompt, TextContent)
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=prompt.text.upper()), model="test-model"
        )

    async with open_session(proxy, upstream, downstream, sampling_callback=sample) as session:
        result = await session.call_tool("sample", {"prompt": "sampled through mcpfence"})
    assert text_of(result) == "SAMPLED THROUGH MCPFENCE"

"""The MCP conformance suite's "everything" server, written with the official Python SDK.

The suite (`conformance list --server`) calls fixed tools, resources and prompts and checks
what comes back; its reference server is TypeScript and unpublished, so this is ours. Run it
as ``python tests/e2e/conformance/server.py --port P``: Streamable HTTP at ``/mcp``, serving both
the stateful revisions (initialize handshake, through 2025-11-25) and stateless 2026-07-28,
with an event store so SSE streams can be resumed (SEP-1699). Where the reference server
answers in shapes the SDK does not (JSON lines, trimmed header values), this one does too
(reference_shapes.py), so a proxy in front of it meets them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer, UserMessage
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import (
    AudioContent,
    CallToolResult,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    JSONRPCMessage,
    RequestParams,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    UnsubscribeRequestParams,
)
from starlette.types import ASGIApp

# Run as a script, this folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.e2e.conformance.content import (
    CUSTOM_HEADER_SCHEMA,
    DEFAULTS_SCHEMA,
    ENUMS_SCHEMA,
    JSON_SCHEMA_2020_12,
    PNG_BASE64,
    WAV_BASE64,
    embedded_text,
    text,
)
from tests.e2e.conformance.input_required import (
    add_input_required_tools,
    add_stateless_tools,
)
from tests.e2e.conformance.reference_shapes import ReferenceShapes

STEP_DELAY_SECONDS = 0.05
# Tools whose 2026-07-28 calls answer as JSON lines, as the reference server's streaming ones do.
LINE_STREAMED_TOOLS = ("test_streaming_elicitation",)


class MemoryEventStore(EventStore):
    """Keeps every SSE event so a client that lost a stream can resume it with Last-Event-ID.

    Ids come from one counter, so they are unique across all streams and sort in send order.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._events: list[tuple[StreamId, int, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = next(self._ids)
        self._events.append((stream_id, event_id, message))
        return str(event_id)

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        if not last_event_id.isdigit():
            return None
        after = int(last_event_id)
        stream = next((s for s, i, _ in self._events if i == after), None)
        if stream is None:
            return None
        for stream_id, event_id, message in self._events:
            # Priming events carry no message; there is nothing to replay for them.
            if stream_id == stream and event_id > after and message is not None:
                await send_callback(EventMessage(message, str(event_id)))
        return stream


def build_server() -> MCPServer:
    """The server with every tool, resource and prompt the suite calls."""
    mcp = MCPServer("mcp-conformance-test-server", version="1.0.0")
    add_content_tools(mcp)
    add_notifying_tools(mcp)
    add_client_request_tools(mcp)
    add_input_required_tools(mcp)
    add_stateless_tools(mcp)
    add_resources(mcp)
    add_prompts(mcp)
    add_utilities(mcp)
    return mcp


def add_content_tools(mcp: MCPServer) -> None:
    """Tools whose results carry each kind of content block, an error, or a rich input schema."""

    @mcp.tool(description="Tests simple text content response")
    def test_simple_text() -> list[TextContent]:
        return text("This is a simple text response for testing.")

    @mcp.tool(description="Tests image content response")
    def test_image_content() -> list[ImageContent]:
        return [ImageContent(type="image", data=PNG_BASE64, mime_type="image/png")]

    @mcp.tool(description="Tests audio content response")
    def test_audio_content() -> list[AudioContent]:
        return [AudioContent(type="audio", data=WAV_BASE64, mime_type="audio/wav")]

    @mcp.tool(description="Tests embedded resource content response")
    def test_embedded_resource() -> list[EmbeddedResource]:
        return [embedded_text("test://embedded-resource", "This is an embedded resource content.")]

    @mcp.tool(description="Tests response with multiple content types (text, image, resource)")
    def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
        return [
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG_BASE64, mime_type="image/png"),
            embedded_text(
                "test://mixed-content-resource",
                json.dumps({"test": "data", "value": 123}),
                "application/json",
            ),
        ]

    @mcp.tool(description="Tests error response handling")
    def test_error_handling() -> CallToolResult:
        # Returned rather than raised: the SDK would prefix a raised error's message.
        message = "This tool intentionally returns an error for testing"
        return CallToolResult(content=text(message), is_error=True)

    @mcp.tool(description="Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)")
    def json_schema_2020_12_tool(
        name: str | None = None,
        address: dict[str, str] | None = None,
        contactMethod: str | None = None,
        phone: str | None = None,
        email: str | None = None,
    ) -> list[TextContent]:
        given = {"name": name, "address": address, "contactMethod": contactMethod}
        given |= {"phone": phone, "email": email}
        args = {k: v for k, v in given.items() if v is not None}
        return text(f"JSON Schema 2020-12 tool called with: {json.dumps(args)}")

    advertise_schema(mcp, "json_schema_2020_12_tool", JSON_SCHEMA_2020_12)

    @mcp.tool(description="Tests an argument mirrored into the Mcp-Param-Region header (SEP-2243)")
    def test_custom_header(region: str) -> list[TextContent]:
        return text(f"Region: {region}")

    advertise_schema(mcp, "test_custom_header", CUSTOM_HEADER_SCHEMA)


def advertise_schema(mcp: MCPServer, tool_name: str, schema: dict[str, Any]) -> None:
    """Advertise ``schema`` verbatim for a tool: the SDK would derive a plainer one from the signature."""
    tool = mcp._tool_manager.get_tool(tool_name)
    assert tool is not None
    tool.parameters = schema


def add_notifying_tools(mcp: MCPServer) -> None:
    """Tools that send notifications while they run, or drop their stream mid-call."""

    @mcp.tool(description="Tests tool that emits log messages during execution")
    async def test_tool_with_logging(ctx: Context) -> list[TextContent]:
        for step, message in enumerate(
            ["Tool execution started", "Tool processing data", "Tool execution completed"]
        ):
            if step:
                await asyncio.sleep(STEP_DELAY_SECONDS)
            await ctx.log("info", message, logger_name="conformance-test-server")
        return text("Tool with logging executed successfully")

    @mcp.tool(description="Tests tool that reports progress notifications")
    async def test_tool_with_progress(ctx: Context) -> list[TextContent]:
        for step, progress in enumerate([0, 50, 100]):
            if step:
                await asyncio.sleep(STEP_DELAY_SECONDS)
            await ctx.report_progress(progress, 100, f"Completed step {progress} of 100")
        meta = ctx.request_context.meta
        token = meta.get("progress_token") if meta else None
        return text(str(token if token is not None else 0))

    @mcp.tool(
        description="Tests SSE stream disconnection and client reconnection (SEP-1699): the "
        "server closes the stream mid-call and sends the result after the client reconnects."
    )
    async def test_reconnection(ctx: Context) -> list[TextContent]:
        await ctx.close_sse_stream()
        await asyncio.sleep(2 * STEP_DELAY_SECONDS)
        return [
            TextContent(
                type="text",
                text="Reconnection test completed successfully. If you received this, "
                "the client properly reconnected after stream closure.",
            )
        ]


def add_client_request_tools(mcp: MCPServer) -> None:
    """Tools that ask the client something (sampling, elicitation) and report its answer."""

    @mcp.tool(description="Tests server-initiated sampling (LLM completion request)")
    async def test_sampling(prompt: str, ctx: Context) -> list[TextContent]:
        try:
            result = await ctx.session.create_message(
                [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        except Exception as exc:  # the suite wants a readable result, not a protocol error
            return text(f"Sampling not supported or error: {exc}")
        content = result.content
        answer = content.text if isinstance(content, TextContent) else "No response"
        return text(f"LLM response: {answer}")

    @mcp.tool(description="Tests server-initiated elicitation (user input request)")
    async def test_elicitation(message: str, ctx: Context) -> list[TextContent]:
        schema = {
            "type": "object",
            "properties": {"response": {"type": "string", "description": "User's response"}},
            "required": ["response"],
        }
        return await elicit(ctx, message, schema, "User response")

    @mcp.tool(description="Tests elicitation with default values per SEP-1034")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> list[TextContent]:
        message = "Please review and update the form fields with defaults"
        return await elicit(ctx, message, DEFAULTS_SCHEMA, "Elicitation completed")

    @mcp.tool(description="Tests elicitation with enum schema improvements per SEP-1330")
    async def test_elicitation_sep1330_enums(ctx: Context) -> list[TextContent]:
        message = "Please select options from the enum fields"
        return await elicit(ctx, message, ENUMS_SCHEMA, "Elicitation completed")


async def elicit(ctx: Context, message: str, schema: dict[str, Any], label: str) -> list[TextContent]:
    """Send a form elicitation with a hand-written schema and echo the client's answer.

    The schema goes out as written (not from a pydantic model) because the suite inspects
    fields, such as `enumNames`, that a model would not produce.
    """
    try:
        result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    except Exception as exc:  # the suite wants a readable result, not a protocol error
        return text(f"Elicitation not supported or error: {exc}")
    content = json.dumps(result.content or {})
    return text(f"{label}: action={result.action}, content={content}")


def add_resources(mcp: MCPServer) -> None:
    @mcp.resource(
        "test://static-text",
        name="static-text",
        title="Static Text Resource",
        description="A static text resource for testing",
        mime_type="text/plain",
    )
    def static_text() -> str:
        return "This is the content of the static text resource."

    @mcp.resource(
        "test://static-binary",
        name="static-binary",
        title="Static Binary Resource",
        description="A static binary resource (image) for testing",
        mime_type="image/png",
    )
    def static_binary() -> bytes:
        return base64.b64decode(PNG_BASE64)

    @mcp.resource(
        "test://template/{id}/data",
        name="template",
        title="Resource Template",
        description="A resource template with parameter substitution",
        mime_type="application/json",
    )
    def template(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @mcp.resource(
        "test://watched-resource",
        name="watched-resource",
        title="Watched Resource",
        description="A resource clients can subscribe to",
        mime_type="text/plain",
    )
    def watched_resource() -> str:
        return "Watched resource content"


def add_prompts(mcp: MCPServer) -> None:
    @mcp.prompt(title="Simple Test Prompt", description="A simple prompt without arguments")
    def test_simple_prompt() -> list[UserMessage]:
        return [UserMessage("This is a simple prompt for testing.")]

    @mcp.prompt(title="Prompt With Arguments", description="A prompt with required arguments")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]

    @mcp.prompt(
        title="Prompt With Embedded Resource",
        description="A prompt that includes an embedded resource",
    )
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
        return [
            UserMessage(embedded_text(resourceUri, "Embedded resource content for testing.")),
            UserMessage("Please process the embedded resource above."),
        ]

    @mcp.prompt(title="Prompt With Image", description="A prompt that includes image content")
    def test_prompt_with_image() -> list[UserMessage]:
        return [
            UserMessage(ImageContent(type="image", data=PNG_BASE64, mime_type="image/png")),
            UserMessage("Please analyze the image above."),
        ]


def add_utilities(mcp: MCPServer) -> None:
    """Completion, logging level and resource subscriptions, on the low-level server.

    MCPServer has no typed decorators for these; having a handler is also what makes the SDK
    advertise the `completions`, `logging` and `resources.subscribe` capabilities. The suite
    only checks that each request is accepted, and nothing here changes a resource, so the
    level and the subscriptions are acknowledged and not kept.
    """

    async def complete(ctx: ServerRequestContext[Any], params: CompleteRequestParams) -> CompleteResult:
        return CompleteResult(completion=Completion(values=[], total=0, has_more=False))

    async def acknowledge(ctx: ServerRequestContext[Any], params: RequestParams) -> EmptyResult:
        return EmptyResult()

    lowlevel = mcp._lowlevel_server
    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)
    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, acknowledge)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, acknowledge)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, acknowledge)


def build_app(host: str = "127.0.0.1") -> ASGIApp:
    """The Streamable HTTP app at ``/mcp``, resumable through an in-memory event store."""
    app = build_server().streamable_http_app(
        host=host,
        event_store=MemoryEventStore(),
        retry_interval=100,  # milliseconds: resumed streams are back within the suite's wait
    )
    return ReferenceShapes(app, LINE_STREAMED_TOOLS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args()
    uvicorn.run(build_app(args.host), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

"""Tools for the 2026-07-28 revision: multi-round-trip requests (SEP-2322) and capabilities.

On this revision a server cannot call the client mid-request: it answers with an
InputRequiredResult naming what it needs, and the client retries the same request with
`inputResponses` (and the echoed `requestState`, which the SDK seals and verifies). The suite
checks the keys and texts used here.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context, MCPServer, UserMessage
from mcp.shared.exceptions import MCPError
from mcp.types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    SamplingMessage,
    TextContent,
)

from tests.e2e.conformance.content import text

Answer = InputRequiredResult | list[TextContent]
STREAM_PROGRESS_TOKEN = "stream-progress"


def ask(requests: dict[str, InputRequest], state: dict[str, Any] | None = None) -> InputRequiredResult:
    return InputRequiredResult(
        input_requests=requests, request_state=json.dumps(state) if state is not None else None
    )


def ask_form(message: str, field: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def ask_model(prompt: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def form_value(ctx: Context, key: str, field: str) -> Any:
    """The accepted form's ``field`` from the client's response under ``key``, or None."""
    response = (ctx.input_responses or {}).get(key)
    if isinstance(response, ElicitResult) and response.action == "accept" and response.content:
        return response.content.get(field)
    return None


def model_text(ctx: Context, key: str) -> str | None:
    response = (ctx.input_responses or {}).get(key)
    if isinstance(response, CreateMessageResult) and isinstance(response.content, TextContent):
        return response.content.text
    return None


def root_count(ctx: Context, key: str) -> int | None:
    response = (ctx.input_responses or {}).get(key)
    return len(response.roots) if isinstance(response, ListRootsResult) else None


def state(ctx: Context) -> dict[str, Any]:
    """The plaintext state this server minted last round (the SDK verified its seal)."""
    return dict(json.loads(ctx.request_state)) if ctx.request_state else {}


def add_input_required_tools(mcp: MCPServer) -> None:
    """Tools (and a prompt) that ask the client through InputRequiredResult."""

    @mcp.tool(description="MRTR: returns InputRequiredResult with an elicitation request")
    def test_input_required_result_elicitation(ctx: Context) -> Answer:
        name = form_value(ctx, "user_name", "name")
        if name is None:
            return ask({"user_name": ask_form("What is your name?", "name")})
        return text(f"Hello, {name}!")

    @mcp.tool(description="MRTR: returns InputRequiredResult with a sampling request")
    def test_input_required_result_sampling(ctx: Context) -> Answer:
        answer = model_text(ctx, "sample_request")
        if answer is None:
            return ask({"sample_request": ask_model("What is the capital of France?", 100)})
        return text(f"Sampling result: {answer}")

    @mcp.tool(description="MRTR: returns InputRequiredResult with a roots/list request")
    def test_input_required_result_list_roots(ctx: Context) -> Answer:
        count = root_count(ctx, "roots_request")
        if count is None:
            return ask({"roots_request": ListRootsRequest()})
        return text(f"Found {count} root(s)")

    @mcp.tool(description="MRTR: returns InputRequiredResult with requestState")
    def test_input_required_result_request_state(ctx: Context) -> Answer:
        if state(ctx).get("kind") == "request-state" and form_value(ctx, "confirm", "ok") is True:
            return text("state-ok: requestState validated")
        confirm = ask_form("Please confirm", "ok", "boolean")
        return ask({"confirm": confirm}, {"kind": "request-state"})

    @mcp.tool(description="MRTR: returns InputRequiredResult with multiple input requests")
    def test_input_required_result_multiple_inputs(ctx: Context) -> Answer:
        name = form_value(ctx, "user_name", "name")
        greeting = model_text(ctx, "greeting")
        roots = root_count(ctx, "client_roots")
        if name is None or greeting is None or roots is None:
            requests: dict[str, InputRequest] = {
                "user_name": ask_form("What is your name?", "name"),
                "greeting": ask_model("Generate a greeting", 50),
                "client_roots": ListRootsRequest(),
            }
            return ask(requests, {"kind": "multiple-inputs"})
        return text(f"Name: {name}; Greeting: {greeting}; Roots: {roots}")

    @mcp.tool(description="MRTR: a multi-round InputRequiredResult workflow")
    def test_input_required_result_multi_round(ctx: Context) -> Answer:
        previous = state(ctx)
        name = form_value(ctx, "step1", "name")
        if previous.get("round") == 1 and name is not None:
            color = ask_form("Step 2: What is your favorite color?", "color")
            return ask({"step2": color}, {"round": 2, "name": name})
        color = form_value(ctx, "step2", "color")
        if previous.get("round") == 2 and color is not None:
            return text(f"Multi-round complete for {previous.get('name')} who likes {color}")
        return ask({"step1": ask_form("Step 1: What is your name?", "name")}, {"round": 1})

    @mcp.tool(description="MRTR: the SDK rejects a requestState whose seal was tampered with")
    def test_input_required_result_tampered_state(ctx: Context) -> Answer:
        if state(ctx).get("kind") == "tamper-test" and form_value(ctx, "confirm", "ok") is not None:
            return text("integrity-ok: state verified")
        confirm = ask_form("Please confirm", "ok", "boolean")
        return ask({"confirm": confirm}, {"kind": "tamper-test"})

    @mcp.tool(description="MRTR: asks only for what the client declared it can answer")
    def test_input_required_result_capabilities(ctx: Context) -> Answer:
        if ctx.input_responses:
            return text(f"capabilities-ok: received {','.join(ctx.input_responses)}")
        declared = ctx.client_capabilities
        requests: dict[str, InputRequest] = {}
        if declared is not None and declared.elicitation is not None:
            requests["elicit_input"] = ask_form("Elicitation input", "value")
        if declared is not None and declared.sampling is not None:
            requests["sample_input"] = ask_model("Sample request", 50)
        if not requests:
            return text("No supported capabilities declared")
        return ask(requests, {"kind": "capabilities-test"})

    @mcp.prompt(description="MRTR: a prompt that requires elicitation input")
    def test_input_required_result_prompt(ctx: Context) -> InputRequiredResult | list[UserMessage]:
        context = form_value(ctx, "user_context", "context")
        if context is None:
            question = ask_form("What context should the prompt use?", "context")
            return ask({"user_context": question})
        return [UserMessage(f"Prompt with context: {context}")]


def add_stateless_tools(mcp: MCPServer) -> None:
    """Tools the 2026-07-28 `server-stateless` scenario calls: a capability check, list changes."""

    @mcp.tool(description="Requires the sampling capability, which the client must declare")
    def test_missing_capability(ctx: Context) -> list[TextContent]:
        declared = ctx.client_capabilities
        if declared is None or declared.sampling is None:
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="Client did not declare the sampling capability",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return text("Success")

    @mcp.tool(description="Streams progress, then asks for input inside its result (never a request)")
    async def test_streaming_elicitation(ctx: Context) -> Answer:
        # The reference server streams this progress whether or not the client sent a token.
        meta = ctx.request_context.meta
        token = (meta.get("progress_token") if meta else None) or STREAM_PROGRESS_TOKEN
        await ctx.session.send_progress_notification(token, 50, 100, related_request_id=ctx.request_id)
        value = form_value(ctx, "stream_input", "value")
        if value is None:
            return ask({"stream_input": ask_form("Streaming input", "value")})
        return text(f"Streaming complete: {value}")

    @mcp.tool(description="Changes the tool list: listeners get notifications/tools/list_changed")
    async def test_trigger_tool_change(ctx: Context) -> list[TextContent]:
        await ctx.notify_tools_changed()
        return text("Mutation triggered")

    @mcp.tool(description="Changes the prompt list: listeners get notifications/prompts/list_changed")
    async def test_trigger_prompt_change(ctx: Context) -> list[TextContent]:
        await ctx.notify_prompts_changed()
        return text("Mutation triggered")

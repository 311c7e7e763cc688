"""The pipeline runs addons in order, stops at a local answer, and fails closed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from mcpfence import jsonrpc
from mcpfence.pipeline import BaseAddon, Context, Flow, Pipeline, PipelineOrderError


class Recording(BaseAddon):
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name = name
        self.seen = seen

    def request(self, flow: Flow) -> None:
        self.seen.append(f"request {self.name}")

    def response(self, flow: Flow) -> None:
        self.seen.append(f"response {self.name}")


class Answering(BaseAddon):
    def request(self, flow: Flow) -> None:
        flow.reply(jsonrpc.result_response(flow.request["id"], {"answered": True}))


class Failing(BaseAddon):
    def request(self, flow: Flow) -> None:
        raise RuntimeError("boom")

    def response(self, flow: Flow) -> None:
        raise RuntimeError("boom")


def new_flow() -> Flow:
    return Flow(Context("r"), {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {}})


def test_requests_run_in_order_and_responses_in_reverse() -> None:
    seen: list[str] = []
    pipeline = Pipeline([Recording("a", seen), Recording("b", seen)])
    flow = new_flow()
    pipeline.request(flow)
    pipeline.response(flow)
    assert seen == ["request a", "request b", "response b", "response a"]


def test_a_local_answer_stops_the_request_hooks() -> None:
    seen: list[str] = []
    pipeline = Pipeline([Answering(), Recording("later", seen)])
    flow = new_flow()
    pipeline.request(flow)
    assert flow.answered_locally
    assert seen == []


def test_an_addon_that_fails_on_a_request_refuses_it() -> None:
    flow = new_flow()
    Pipeline([Failing()]).request(flow)
    assert flow.answered_locally
    assert flow.response is not None
    assert flow.response["error"]["code"] == jsonrpc.INTERNAL_ERROR
    assert flow.response["id"] == 7


def test_an_addon_that_fails_on_an_answer_turns_it_into_an_error_and_the_rest_still_run() -> None:
    seen: list[str] = []
    flow = new_flow()
    flow.response = jsonrpc.result_response(7, {"ok": True})
    Pipeline([Recording("outer", seen), Failing()]).response(flow)
    assert flow.response["error"]["code"] == jsonrpc.INTERNAL_ERROR
    assert seen == ["response outer"]


class FailingPreparation(BaseAddon):
    async def prepare(self, context: Context, messages: Sequence[jsonrpc.Message]) -> None:
        raise RuntimeError("boom")


def test_a_failing_preparation_is_contained_and_the_request_hooks_still_decide() -> None:
    seen: list[str] = []
    pipeline = Pipeline([FailingPreparation(), Recording("a", seen)])
    flow = new_flow()
    asyncio.run(pipeline.prepare(flow.context, [flow.request]))
    pipeline.request(flow)
    assert seen == ["request a"]


class FailingOnServerMessages(BaseAddon):
    def server_message(self, context: Context, message: jsonrpc.Message) -> jsonrpc.Message:
        raise RuntimeError("boom")


def test_an_addon_that_fails_on_a_server_message_drops_it_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notification = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}

    checked = Pipeline([FailingOnServerMessages()]).server_message(Context("r"), notification)

    assert checked is None
    assert "route r: checking notifications/tools/list_changed from the server failed" in caplog.text


class Outer(BaseAddon):
    pass


class Inner(BaseAddon):
    after = (Outer,)


class Innermost(BaseAddon):
    before = (Outer,)


def test_an_addon_placed_before_one_it_must_follow_is_refused_naming_both() -> None:
    with pytest.raises(PipelineOrderError, match="Outer must come before Inner"):
        Pipeline([Inner(), Outer()])


def test_an_addon_placed_after_one_it_must_precede_is_refused_naming_both() -> None:
    with pytest.raises(PipelineOrderError, match="Innermost must come before Outer"):
        Pipeline([Outer(), Innermost()])


def test_an_order_rule_binds_only_addons_that_are_present() -> None:
    assert len(Pipeline([Inner(), Recording("a", [])]).addons) == 2

"""Hosted sessions fail closed and loudly: a server message no addon could check is not
relayed (a server request is refused upstream), and the idle reaper logs what it cannot end."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Message, RequestId
from mcpfence.pipeline import BaseAddon, Context, Pipeline
from mcpfence.transport.downstream.sessions import Session, SessionTable
from mcpfence.transport.upstream.hub import Hub
from mcpfence.transport.upstream.link import OnClosed, OnMessage

pytestmark = pytest.mark.anyio


class FailingOnServerMessages(BaseAddon):
    def server_message(self, context: Context, message: Message) -> Message:
        raise RuntimeError("boom")


class RecordingLink:
    """The upstream's side of the pipe: what mcpfence sent it."""

    label = "recording upstream"

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        return None

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        return None


class RecordingOutbox:
    """The client's side: what mcpfence relayed to it."""

    def __init__(self) -> None:
        self.relayed: list[Message] = []

    async def put(self, message: Message, request_id: RequestId | None) -> None:
        self.relayed.append(message)

    def busy(self) -> bool:
        return False

    def close(self) -> None:
        return None


async def test_a_server_request_no_addon_could_check_is_refused_upstream_not_relayed() -> None:
    link, outbox = RecordingLink(), RecordingOutbox()
    hub = Hub(lambda: link, 5.0, shared=False)
    session = Session("s", Context("r", "s"), Pipeline([FailingOnServerMessages()]), hub, outbox)
    request = {"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {}}

    await session.receive(request)

    assert outbox.relayed == []
    assert len(link.sent) == 1
    assert link.sent[0]["id"] == "srv-1"
    assert link.sent[0]["error"]["code"] == jsonrpc.INTERNAL_ERROR


async def test_a_server_notification_no_addon_could_check_is_dropped() -> None:
    link, outbox = RecordingLink(), RecordingOutbox()
    hub = Hub(lambda: link, 5.0, shared=False)
    session = Session("s", Context("r", "s"), Pipeline([FailingOnServerMessages()]), hub, outbox)

    await session.receive({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})

    assert outbox.relayed == []
    assert link.sent == []


class LeavingFails(Hub):
    async def leave(self, member: object) -> None:
        raise RuntimeError("the child would not stop")


async def test_the_idle_reaper_logs_a_session_it_cannot_end_and_keeps_reaping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = SessionTable("r", Pipeline(), RecordingLink, 5.0, shared=False, idle_seconds=0.01)
    broken = table.open(RecordingOutbox())
    broken.hub = LeavingFails(RecordingLink, 5.0, shared=False)
    healthy = table.open(RecordingOutbox())
    caplog.set_level(logging.ERROR, logger="mcpfence")

    async with asyncio.timeout(10):
        while table.sessions or "ending idle session" not in caplog.text:
            await asyncio.sleep(0)
    await table.close()

    assert f"route r: ending idle session {broken.id} failed" in caplog.text
    assert healthy.id not in table.sessions

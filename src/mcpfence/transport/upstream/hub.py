"""One upstream link and the downstream sessions that use it.

A hub owns the link's lifetime: it starts the link on first use, and after the
link dies (a crashed child, a dropped stream) the next message starts a fresh
one. MCP servers are stateful, so a fresh link first gets the handshake the
client sent originally (``initialize`` and ``notifications/initialized``),
replayed by mcpfence; what the old server held in memory is gone, and requests
it was handling are answered with -32603.

Several sessions may share one link (``upstream.shared``), so request ids are
rewritten to ids unique on the link, and progress tokens likewise, which is
also what lets a progress notification find the request it belongs to.
Requests the server starts itself (sampling, elicitation) carry no hint of the
session they are for: they go to the session that most recently sent a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass
from typing import Protocol

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Message, RequestId
from mcpfence.transport.upstream.client import UpstreamError
from mcpfence.transport.upstream.link import Link, LinkFactory

log = logging.getLogger("mcpfence.upstream")

INITIALIZED: Message = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class Member(Protocol):
    """A downstream session as the hub sees it."""

    async def receive(self, message: Message) -> None:
        """A message from upstream, with the session's own ids restored."""
        ...

    async def fail(self, request_id: RequestId, reason: str) -> None:
        """The upstream will never answer this request."""
        ...


@dataclass
class Pending:
    """A request forwarded on the link, by its link-unique id."""

    member: Member
    own_id: RequestId
    own_token: object  # the client's progress token, or None
    timer: asyncio.TimerHandle


class Hub:
    """Routes messages between one (re)startable link and its member sessions."""

    def __init__(self, factory: LinkFactory, timeout_seconds: float, *, shared: bool) -> None:
        self._factory = factory
        self.timeout_seconds = timeout_seconds
        self.shared = shared
        self._link: Link | None = None
        self._starting = asyncio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._members: list[Member] = []
        self._recent: Member | None = None
        self._handshake: Message | None = None
        self._handshake_id: int | None = None
        self._welcome: Message | None = None
        self._initialized_sent = False
        self._replay: tuple[str, asyncio.Future[Message]] | None = None
        self._chores: set[asyncio.Task[None]] = set()

    def join(self, member: Member) -> None:
        """Take on a session; the link starts only when it first sends something."""
        self._members.append(member)

    async def leave(self, member: Member) -> None:
        """Forget a session; a hub that is not shared stops its link with it."""
        if member in self._members:
            self._members.remove(member)
        for upstream_id in [k for k, entry in self._pending.items() if entry.member is member]:
            self._pop(upstream_id)
        if not self.shared and not self._members:
            await self.close()

    async def close(self) -> None:
        """Stop the link; the hub stays usable, and the next message starts a new one."""
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def send(self, member: Member, message: Message) -> None:
        """Forward one message from ``member``; a request that cannot be sent is failed."""
        if jsonrpc.is_request(message) and message["method"] == "initialize" and self._welcome:
            await member.receive({**self._welcome, "id": message["id"]})
            return
        try:
            link = await self._ensure_link()
            out = self._outbound(member, message)
            if out is not None:
                await link.send(out)
        except UpstreamError as error:
            if jsonrpc.is_request(message):
                self._forget(member, message["id"])
                await member.fail(message["id"], error.message)
            else:
                log.warning("dropped a message for the upstream: %s", error.message)

    def _outbound(self, member: Member, message: Message) -> Message | None:
        """The message as the link must see it (ids rewritten), or None to drop it."""
        method = message.get("method")
        if jsonrpc.is_request(message):
            upstream_id = next(self._ids)
            token = _progress_token(message)
            timer = asyncio.get_running_loop().call_later(self.timeout_seconds, self._expire, upstream_id)
            self._pending[upstream_id] = Pending(member, message["id"], token, timer)
            self._recent = member
            if method == "initialize":
                self._handshake, self._handshake_id = message, upstream_id
            return _with_progress_token({**message, "id": upstream_id}, token, upstream_id)
        if method == "notifications/initialized":
            if self._initialized_sent:
                return None
            self._initialized_sent = True
        elif method == "notifications/cancelled":
            params = message.get("params")
            if not isinstance(params, dict):
                return None
            cancelled = self._forget(member, params.get("requestId"))
            if cancelled is None:
                return None
            return {**message, "params": {**params, "requestId": cancelled}}
        return message

    def _forget(self, member: Member, request_id: object) -> int | None:
        for upstream_id, entry in self._pending.items():
            if entry.member is member and entry.own_id == request_id:
                self._pop(upstream_id)
                return upstream_id
        return None

    def _pop(self, upstream_id: object) -> Pending | None:
        entry = self._pending.pop(upstream_id, None) if isinstance(upstream_id, int) else None
        if entry is not None:
            entry.timer.cancel()
        return entry

    def _expire(self, upstream_id: int) -> None:
        """A request ran out of time: answer it, and tell the upstream to stop."""
        entry = self._pop(upstream_id)
        if entry is not None:
            task = asyncio.create_task(self._give_up(upstream_id, entry))
            self._chores.add(task)
            task.add_done_callback(self._chores.discard)

    async def _give_up(self, upstream_id: int, entry: Pending) -> None:
        link = self._link
        if link is not None:
            params = {"requestId": upstream_id, "reason": "timed out"}
            with contextlib.suppress(UpstreamError):
                await link.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
        label = link.label if link is not None else "the upstream"
        await entry.member.fail(entry.own_id, f"{label} did not answer within {self.timeout_seconds:g}s")

    # -- the link ------------------------------------------------------------

    async def _ensure_link(self) -> Link:
        async with self._starting:
            if self._link is not None:
                return self._link
            link = self._factory()

            async def closed(reason: str) -> None:
                await self._closed(link, reason)

            await link.start(self._received, closed)
            self._link = link
            if self._handshake is not None:
                await self._replay_handshake(link, self._handshake)
            return link

    async def _replay_handshake(self, link: Link, handshake: Message) -> None:
        """Bring a fresh server to where the client believes it is: initialized."""
        replay_id = f"mcpfence-replay-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replay = (replay_id, future)
        try:
            await link.send({**handshake, "id": replay_id})
            async with asyncio.timeout(self.timeout_seconds):
                answer = await future
            if "result" not in answer:
                raise UpstreamError(f"{link.label} refused the replayed initialize: {answer.get('error')}")
            await link.send(INITIALIZED)
            self._initialized_sent = True
        except (TimeoutError, UpstreamError) as exc:
            self._link = None
            await link.close()
            if isinstance(exc, UpstreamError):
                raise
            raise UpstreamError(f"{link.label} did not answer the replayed initialize") from None
        finally:
            self._replay = None

    async def _received(self, message: Message) -> None:
        if jsonrpc.is_response(message):
            await self._answer(message)
        elif message.get("method") == "notifications/progress":
            await self._progress(message)
        elif jsonrpc.is_request(message):
            target = self._recent if self._recent in self._members else None
            target = target or (self._members[-1] if self._members else None)
            if target is not None:
                await target.receive(message)
            elif self._link is not None:  # nobody can answer: say so rather than leave the server waiting
                reason = "no client is connected to answer this request"
                error = jsonrpc.error_response(message["id"], jsonrpc.INTERNAL_ERROR, reason)
                with contextlib.suppress(UpstreamError):
                    await self._link.send(error)
        else:
            for member in list(self._members):
                await member.receive(message)

    async def _answer(self, message: Message) -> None:
        if self._replay is not None and message.get("id") == self._replay[0]:
            if not self._replay[1].done():
                self._replay[1].set_result(message)
            return
        upstream_id = message.get("id")
        entry = self._pop(upstream_id)
        if entry is None:
            return  # cancelled, timed out, or its session has ended
        if upstream_id == self._handshake_id and "result" in message:
            self._welcome = message
        await entry.member.receive({**message, "id": entry.own_id})

    async def _progress(self, message: Message) -> None:
        params = message.get("params")
        token = params.get("progressToken") if isinstance(params, dict) else None
        entry = self._pending.get(token) if isinstance(token, int) else None
        if entry is not None and isinstance(params, dict):
            own = {**params, "progressToken": entry.own_token}
            await entry.member.receive({**message, "params": own})

    async def _closed(self, link: Link, reason: str) -> None:
        if link is not self._link:
            return
        self._link = None
        self._initialized_sent = False
        if self._replay is not None and not self._replay[1].done():
            self._replay[1].set_exception(UpstreamError(f"{link.label} {reason}"))
        message = f"{link.label} {reason} before answering; the next request starts it again"
        for upstream_id in list(self._pending):
            entry = self._pop(upstream_id)
            if entry is not None:
                await entry.member.fail(entry.own_id, message)


def _progress_token(message: Message) -> object:
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get("progressToken") if isinstance(meta, dict) else None


def _with_progress_token(message: Message, token: object, upstream_token: int) -> Message:
    """Replace the client's progress token by the link-unique request id."""
    if token is None:
        return message
    params = message["params"]
    return {**message, "params": {**params, "_meta": {**params["_meta"], "progressToken": upstream_token}}}

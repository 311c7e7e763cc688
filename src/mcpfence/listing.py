"""mcpfence lists an upstream's tools itself, when no relayed ``tools/list`` taught it.

The argument check needs each tool's ``inputSchema`` before the first call is
forwarded, and a client may call a tool without listing first (it cached the list,
or was told the name). Then mcpfence asks once, on a connection of its own, over
the upstream's own transport (a :class:`~mcpfence.transport.upstream.link.Link`: a
Streamable HTTP session with its ``initialize`` handshake, a stateless 2026-07-28
request, a legacy SSE stream, or a stdio child), and the catalog keeps the answer
until the upstream says ``notifications/tools/list_changed``. Concurrent calls
share one listing; a failed one is not cached, so the next call tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Final

from mcp_types.version import LATEST_HANDSHAKE_VERSION

from mcpfence import __version__, jsonrpc
from mcpfence.catalog import ToolCatalog
from mcpfence.jsonrpc import Json, Message
from mcpfence.protocol import PROTOCOL_VERSION_META
from mcpfence.transport.upstream.client import UpstreamError
from mcpfence.transport.upstream.hub import INITIALIZED
from mcpfence.transport.upstream.link import Link

log = logging.getLogger("mcpfence")

METHOD_NOT_FOUND: Final = -32601
MAX_PAGES: Final = 100  # an upstream whose cursors never end does not hold a call forever
# A link to the upstream; given the 2026-07-28 revision to speak statelessly, or None for a session.
Connect = Callable[[str | None], Link]


class _Conversation:
    """Requests on one link, matched to their answers by id."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[Message]] = {}

    async def start(self) -> None:
        await self.link.start(self._received, self._closed)

    async def ask(self, method: str, params: dict[str, Json]) -> dict[str, Json]:
        request_id = f"mcpfence-list-{next(self._ids)}"
        answer = self._waiting[request_id] = asyncio.get_running_loop().create_future()
        await self.link.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        message = await answer
        result = message.get("result")
        if not isinstance(result, dict):
            raise UpstreamError(f"{self.link.label} answered {method} with {message.get('error')}")
        return result

    async def _received(self, message: Message) -> None:
        if jsonrpc.is_response(message):
            waiting = self._waiting.pop(str(message.get("id")), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(message)
        elif jsonrpc.is_request(message):  # nobody here can answer the server's own requests
            reason = "mcpfence is only listing tools"
            with contextlib.suppress(UpstreamError):
                await self.link.send(jsonrpc.error_response(message["id"], METHOD_NOT_FOUND, reason))

    async def _closed(self, reason: str) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(UpstreamError(f"{self.link.label} {reason}"))


async def fetch_tools(connect: Connect, timeout: float, stateless: str | None = None) -> list[Json]:
    """Every tool the upstream lists, over a connection opened for this and closed after."""
    conversation = _Conversation(connect(stateless))
    try:
        async with asyncio.timeout(timeout):
            await conversation.start()
            meta: dict[str, Json] = {}
            if stateless is None:
                hello: dict[str, Json] = {
                    "protocolVersion": LATEST_HANDSHAKE_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "mcpfence", "version": __version__},
                }
                await conversation.ask("initialize", hello)
                await conversation.link.send(INITIALIZED)
            else:
                meta = {
                    "_meta": {
                        PROTOCOL_VERSION_META: stateless,
                        "io.modelcontextprotocol/clientCapabilities": {},
                    }
                }
            tools: list[Json] = []
            cursor: Json = None
            for _ in range(MAX_PAGES):
                paging = {"cursor": cursor} if cursor else {}
                page = await conversation.ask("tools/list", {**meta, **paging})
                listed = page.get("tools")
                tools.extend(listed if isinstance(listed, list) else [])
                cursor = page.get("nextCursor")
                if not isinstance(cursor, str) or not cursor:
                    break
            return tools
    except TimeoutError:
        raise UpstreamError(f"{conversation.link.label} did not list its tools within {timeout:g}s") from None
    finally:
        await conversation.link.close()


class SelfListing:
    """Fills a route's catalog entry from the upstream, once, when nothing was relayed."""

    def __init__(self, route: str, catalog: ToolCatalog, connect: Connect, timeout: float) -> None:
        self.route = route
        self.catalog = catalog
        self.connect = connect
        self.timeout = timeout
        self._running: asyncio.Task[None] | None = None

    def missing(self, session: str) -> bool:
        """Whether neither this session nor the route has a listing yet (a check in passing,
        so that the common case awaits nothing)."""
        return not self.catalog.listed(self.route, session)

    async def ensure(self, session: str, stateless: str | None) -> None:
        """Make sure the route (or this session) has a listing; failures are logged, not raised."""
        if not self.missing(session):
            return
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._list(stateless))
        with contextlib.suppress(UpstreamError):
            await asyncio.shield(self._running)

    async def _list(self, stateless: str | None) -> None:
        try:
            tools = await fetch_tools(self.connect, self.timeout, stateless)
        except UpstreamError as error:
            log.warning("route %s: could not list the upstream's tools: %s", self.route, error.message)
            raise
        self.catalog.learn(self.route, tools)
        log.info("route %s: listed %d tools from the upstream for argument checks", self.route, len(tools))

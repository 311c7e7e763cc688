"""Legacy HTTP+SSE upstreams (MCP 2024-11-05): one event stream in, POSTs out.

mcpfence opens the server's SSE URL, waits for the ``endpoint`` event naming
where to POST messages, and reads every answer and server message from the
stream. The endpoint must stay on the server's origin: a server must not be
able to send mcpfence's messages (and its configured credentials) elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urljoin, urlsplit

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError, Message
from mcpfence.transport import sse
from mcpfence.transport.http import media_type
from mcpfence.transport.upstream.client import HttpError, UpstreamError, UpstreamResponse
from mcpfence.transport.upstream.link import OnClosed, OnMessage
from mcpfence.transport.upstream.pool import Upstream

log = logging.getLogger("mcpfence.upstream")

Events = AsyncIterator[sse.Event]


async def deliver_events(events: Events, on_message: OnMessage, label: str) -> None:
    """Pass each JSON-RPC message of an event stream on; skip events that carry none."""
    async for event in events:
        if event.name != "message" or not event.data:
            continue
        try:
            message = jsonrpc.validate_message(jsonrpc.loads(event.data))
        except JsonRpcError:
            log.warning("%s sent an event that is not a JSON-RPC message", label)
            continue
        await on_message(message)


class SseLink:
    """One session with a legacy SSE server."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.endpoint = ""
        self._task: asyncio.Task[None] | None = None
        self._response: UpstreamResponse | None = None

    @property
    def label(self) -> str:
        return f"SSE server {self.upstream.shown_url}"

    async def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        deadline = asyncio.get_running_loop().time() + self.upstream.timeout_seconds
        headers = {"accept": "text/event-stream", **self.upstream.headers}
        response = await self.upstream.open("GET", headers, deadline=deadline)
        self._response = response
        kind = media_type(response.headers.get("content-type", ""))
        if response.status != 200 or kind != "text/event-stream":
            await self.close()
            raise UpstreamError(f"{self.label} answered HTTP {response.status} ({kind or 'no type'}) to GET")
        events = sse.read_events(response.content.iter_any())
        try:
            async with asyncio.timeout_at(deadline):
                self.endpoint = await self._endpoint(events)
        except (TimeoutError, HttpError, ValueError) as exc:
            await self.close()
            raise UpstreamError(f"{self.label} sent no endpoint event: {exc or type(exc).__name__}") from None
        self._task = asyncio.create_task(self._read(events, on_message, on_closed))

    async def _endpoint(self, events: Events) -> str:
        async for event in events:
            if event.name == "endpoint" and event.data:
                endpoint = urljoin(self.upstream.url, event.data.strip())
                if _origin(endpoint) != _origin(self.upstream.url):
                    raise ValueError(f"endpoint {endpoint} is on another origin")
                return endpoint
        raise ValueError("the stream ended")

    async def _read(self, events: Events, on_message: OnMessage, on_closed: OnClosed) -> None:
        reason = "closed its event stream"
        try:
            await deliver_events(events, on_message, self.label)
        except (HttpError, ValueError) as exc:
            reason = f"broke its event stream ({exc or type(exc).__name__})"
        self._task = None
        await self.close()
        await on_closed(reason)

    async def send(self, message: Message) -> None:
        headers = {"content-type": "application/json", **self.upstream.headers}
        deadline = asyncio.get_running_loop().time() + self.upstream.timeout_seconds
        body = jsonrpc.dumps(message)
        response = await self.upstream.open("POST", headers, body, deadline, url=self.endpoint)
        response.release()
        if response.status >= 300:
            raise UpstreamError(f"{self.label} answered HTTP {response.status} to a message")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        response, self._response = self._response, None
        if response is not None:
            response.release()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc

"""Sessions mcpfence hosts itself, across replicas: served by their owner, forwarded to it.

A hosted session (stdio or legacy-SSE upstream, legacy-SSE client) lives in one
replica's memory: its child process or upstream stream cannot move. In cluster
mode its id starts with the owning replica's id; every replica advertises its
internal URL in Redis under a short-lived heartbeat key. A request for another
replica's session is forwarded there as it came, before any check (the owner
checks it, once), over the internal listener, which answers only requests
carrying the cluster secret. If the owner is gone, the session is too: 404, and
the client initializes again, as MCP specifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Final
from urllib.parse import parse_qs

import redis.asyncio as aioredis

from mcpfence import jsonrpc
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.cluster.redis import KEY_PREFIX
from mcpfence.cluster.store import shared
from mcpfence.transport.downstream.app import Route
from mcpfence.transport.headers import downstream_response_headers
from mcpfence.transport.http import (
    BodyTooLarge,
    Receive,
    Request,
    Scope,
    SecretGate,
    Send,
    send_jsonrpc_error,
)
from mcpfence.transport.upstream.client import HttpError
from mcpfence.transport.upstream.http1 import Pool

log = logging.getLogger("mcpfence")

SECRET_HEADER: Final = "x-mcpfence-cluster-secret"
# The client's address, as the forwarding replica saw it; believed only with the secret.
CLIENT_HEADER: Final = "x-mcpfence-client-address"
SECRET_ENV: Final = "MCPFENCE_CLUSTER_SECRET"
FORWARDED: Final = "mcpfence.forwarded"
HEARTBEAT_SECONDS: Final = 2.0
HEARTBEAT_TTL_SECONDS: Final = 6
# Request headers that describe one hop; the rest goes to the owner as the client sent it.
_HOP_HEADERS: Final = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


class Replicas:
    """This replica's id and internal URL in Redis, and the other replicas' URLs."""

    def __init__(self, client: aioredis.Redis, internal_url: str, prefix: str = KEY_PREFIX) -> None:
        self.id = secrets.token_hex(6)
        self.internal_url = internal_url.rstrip("/")
        self._redis = client
        self._prefix = prefix

    def _key(self, replica_id: str) -> str:
        return f"{self._prefix}replica:{replica_id}"

    async def heartbeat(self) -> None:
        """Forever: keep this replica's entry alive; it expires soon after the replica dies."""
        while True:
            with contextlib.suppress(SharedStateUnavailable):
                await shared(self._redis.set(self._key(self.id), self.internal_url, ex=HEARTBEAT_TTL_SECONDS))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def url_of(self, replica_id: str) -> str | None:
        """The internal URL of a live replica, or None when it is gone."""
        found = await shared(self._redis.get(self._key(replica_id)))
        return str(found) if found else None

    def session_prefix(self) -> str:
        return f"{self.id}-"


def hosted_session_id(request: Request) -> str:
    """The hosted session a request names: its ``Mcp-Session-Id``, or a legacy ``session_id``."""
    query = parse_qs(request.query.decode("latin-1"))
    legacy = (query.get("session_id") or query.get("sessionId") or [""])[0]
    return legacy or request.headers.get("mcp-session-id", "")


class OwnerForwarding:
    """Wraps a route with hosted sessions: another replica's session goes to its owner."""

    def __init__(
        self, route: Route, replicas: Replicas, secret: str, *, main_is_hosted: bool, max_body_bytes: int
    ) -> None:
        self.route = route
        self.replicas = replicas
        self._secret = secret
        self._main_is_hosted = main_is_hosted
        self._max_body_bytes = max_body_bytes
        self._pools: dict[str, Pool] = {}  # one per owner replica's internal URL
        self.serves_legacy_sse = getattr(route, "serves_legacy_sse", False)

    async def handle(self, request: Request, send: Send) -> None:
        session_id = self._foreign_session(request)
        if session_id is None:
            await self.route.handle(request, send)
            return
        owner = session_id.split("-", 1)[0]
        try:
            url = await self.replicas.url_of(owner)
        except SharedStateUnavailable as exc:
            await send_jsonrpc_error(send, jsonrpc.JsonRpcError(jsonrpc.INTERNAL_ERROR, str(exc), status=503))
            return
        if url is None:
            await send_jsonrpc_error(send, _session_gone())
            return
        await self._forward(url, request, send)

    def _foreign_session(self, request: Request) -> str | None:
        main = (request.path.rstrip("/") or "/") == getattr(self.route, "path", None)
        if main and not self._main_is_hosted:
            return None  # a relayed session id is the upstream's: any replica relays it
        session_id = hosted_session_id(request)
        if not session_id or session_id.startswith(self.replicas.session_prefix()):
            return None
        if request.scope.get(FORWARDED) or "-" not in session_id:
            return None  # already forwarded once, or not a cluster id: the local table answers 404
        return session_id

    def _pool(self, base: str) -> Pool:
        """The owner's pool. Replicas come and go (new addresses after each restart), so a
        new pool first drops those left without a connection: the map stays as small as
        the set of owners in use."""
        pool = self._pools.get(base)
        if pool is None:
            self._pools = {url: kept for url, kept in self._pools.items() if kept.connections}
            pool = self._pools[base] = Pool(base, limit=256, connect_timeout=5)
        return pool

    async def _forward(self, base: str, request: Request, send: Send) -> None:
        internal = (SECRET_HEADER, CLIENT_HEADER)
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_HEADERS and k not in internal}
        headers[SECRET_HEADER] = self._secret
        peer = request.scope.get("client")
        if peer:
            headers[CLIENT_HEADER] = str(peer[0])
        url = base + request.path + (f"?{request.query.decode('latin-1')}" if request.query else "")
        try:
            body = await request.body(self._max_body_bytes) if request.method == "POST" else None
        except BodyTooLarge:
            message = f"request body exceeds {self._max_body_bytes} bytes"
            await send_jsonrpc_error(send, jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, message, status=413))
            return
        try:
            response = await self._pool(base).request(request.method, url, headers, body)
        except (OSError, HttpError, TimeoutError):  # the owner is gone: so is its session
            await send_jsonrpc_error(send, _session_gone())
            return
        try:
            out = downstream_response_headers(response.headers.items())
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except HttpError:
            # Started answering already? Then the stream just ends, as when the owner dies.
            with contextlib.suppress(Exception):
                await send_jsonrpc_error(send, _session_gone())
        finally:
            response.release()

    async def close_client(self) -> None:
        for pool in self._pools.values():
            await pool.close()


def _session_gone() -> jsonrpc.JsonRpcError:
    return jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, "Session not found", status=404)


class InternalListener(SecretGate):
    """The replica-to-replica listener: the proxy app, for requests with the cluster secret only."""

    def presented(self, scope: Scope) -> bytes | None:
        return dict(scope["headers"]).get(SECRET_HEADER.encode())

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, "cluster secret required", status=403)
        await send_jsonrpc_error(send, refused)

    def admitted(self, scope: Scope) -> Scope:
        scope = {**scope, FORWARDED: True}
        client = dict(scope["headers"]).get(CLIENT_HEADER.encode())
        if client:  # rate limits count the client, not the replica that forwarded
            scope["client"] = (client.decode("latin-1"), 0)
        return scope

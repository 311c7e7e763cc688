"""Upstream ids for relayed requests: one of mcpfence's own per forwarded request.

A client may reuse an id while a request under it is still in flight (``7`` and
``7``, or ``7`` and ``"7"``, which servers key alike). Were the client's id sent
upstream, one request's answer could reach the other, and be checked and recorded
as the other's. So each forwarded request carries an id mcpfence draws at random
(unique on every replica, with no state shared between them), and the answer is
matched to its request by that id alone, then given the client's id back. The id's
nonce is a random prefix drawn once per process (again in each forked worker) and a
counter: unique without a random draw per request.

The client's id travels inside the upstream id, so an answer replayed on a resumed
stream, with no request of its own to match, still reaches the client under its
id. The one thing that needs memory across requests is ``notifications/cancelled``,
which names the client's id: :class:`InFlight` keeps, per session, the upstream
id of each request in flight, behind an interface a shared store can implement.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from typing import Final, Protocol

from mcpfence import jsonrpc
from mcpfence.jsonrpc import Message, RequestId

PREFIX: Final = "mcpfence:"
# 2026-07-28 tags each notification of a ``subscriptions/listen`` stream with the listen request's id.
SUBSCRIPTION_ID: Final = "io.modelcontextprotocol/subscriptionId"
_NONCE_CHARS: Final = 16


class _Nonces:
    """16 hex characters per request: 8 random per process, then an 8-digit counter."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = secrets.token_hex(4)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFF:08x}"


_nonces = _Nonces()


def upstream_id(own: RequestId) -> str:
    """A fresh id for the upstream that names the client's id ``own`` too."""
    encoded = str(own) if type(own) is int else json.dumps(own)
    return f"{PREFIX}{_nonces.next()}:{encoded}"


def own_id(upstream: object) -> RequestId:
    """The client's id an upstream id of ours carries, or None if it is none of ours."""
    if not isinstance(upstream, str) or not upstream.startswith(PREFIX):
        return None
    encoded = upstream[len(PREFIX) + _NONCE_CHARS + 1 :]
    try:
        return jsonrpc.usable_id(json.loads(encoded))
    except ValueError:
        return None


def restore_subscription(message: Message) -> Message:
    """A notification tagged with a listen request's upstream id, tagged with the client's id again."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    own = own_id(meta.get(SUBSCRIPTION_ID)) if isinstance(meta, dict) else None
    if own is None or not isinstance(params, dict) or not isinstance(meta, dict):
        return message
    return {**message, "params": {**params, "_meta": {**meta, SUBSCRIPTION_ID: own}}}


def _key(own: RequestId) -> str:
    """``7`` and ``"7"`` are different requests to the client: keep them apart."""
    return json.dumps(own)


class InFlight(Protocol):
    """Which upstream id each client request in flight was given, per session."""

    def add(self, session: str, own: RequestId, upstream: str) -> None: ...

    def find(self, session: str, own: RequestId) -> str | None: ...

    def discard(self, session: str, own: RequestId, upstream: str) -> None: ...


class MemoryInFlight:
    """:class:`InFlight` in process memory: entries live only while their request does."""

    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, str]] = {}

    def add(self, session: str, own: RequestId, upstream: str) -> None:
        self._sessions.setdefault(session, {})[_key(own)] = upstream

    def find(self, session: str, own: RequestId) -> str | None:
        return self._sessions.get(session, {}).get(_key(own))

    def discard(self, session: str, own: RequestId, upstream: str) -> None:
        requests = self._sessions.get(session)
        if requests is not None and requests.get(_key(own)) == upstream:
            del requests[_key(own)]
            if not requests:
                del self._sessions[session]


def cancellation(message: Message, in_flight: InFlight, session: str) -> Message:
    """A client's ``notifications/cancelled`` naming the upstream id of the request it cancels.

    A request not in flight here keeps the client's id, which names nothing upstream.
    """
    params = message.get("params")
    if not session or message.get("method") != "notifications/cancelled" or not isinstance(params, dict):
        return message
    own = jsonrpc.usable_id(params.get("requestId"))
    upstream = in_flight.find(session, own) if own is not None else None
    if upstream is None:
        return message
    return {**message, "params": {**params, "requestId": upstream}}

"""Deleting expired token routes, and telling the proxy so it ends their sessions.

Reads already treat an expired route as absent, so this task only reclaims storage
and closes sessions that are still open; a one-second period is plenty.
"""

from __future__ import annotations

import contextlib
from typing import NoReturn

import anyio

from mcpfence.access.store import RouteRemoved, Store
from mcpfence.cluster import SharedStateUnavailable

__all__ = ["RouteRemoved", "purge_expired_routes", "run_expiry_purge"]


async def purge_expired_routes(store: Store, on_route_removed: RouteRemoved) -> list[str]:
    """One pass: delete every expired route and report each id removed."""
    removed = await store.purge_expired()
    for route_id in removed:
        await on_route_removed(route_id)
    return removed


async def run_expiry_purge(
    store: Store, on_route_removed: RouteRemoved, interval_seconds: float = 1.0
) -> NoReturn:
    """Purge forever; the proxy runs this in its task group and cancels it at shutdown."""
    while True:
        # Reads hide expired routes anyway: with Redis down, the next pass purges them.
        with contextlib.suppress(SharedStateUnavailable):
            await purge_expired_routes(store, on_route_removed)
        await anyio.sleep(interval_seconds)

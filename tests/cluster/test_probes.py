"""``/healthz`` and ``/readyz`` on an embedded proxy: no Redis, both ready."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.servers import run_proxy


def test_an_embedded_proxy_is_alive_and_ready_without_redis(tmp_path: Path, upstream_url: str) -> None:
    routes = [{"name": "crm", "path": "/crm/mcp", "upstream": {"url": upstream_url}}]
    with run_proxy({"routes": routes}, tmp_path) as proxy:
        assert httpx.get(proxy.url("/healthz")).json()["status"] == "ok"
        ready = httpx.get(proxy.url("/readyz"))
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["reason"] is None

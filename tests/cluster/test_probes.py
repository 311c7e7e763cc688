"""``/healthz`` and ``/readyz`` on an embedded proxy: no Redis, both ready."""

from __future__ import annotations

from pathlib import Path

from tests.servers import in_process


def test_an_embedded_proxy_is_alive_and_ready_without_redis(tmp_path: Path, upstream_url: str) -> None:
    routes = [{"name": "crm", "path": "/crm/mcp", "upstream": {"url": upstream_url}}]
    with in_process({"routes": routes}, tmp_path) as proxy:
        assert proxy.get("/healthz").json()["status"] == "ok"
        ready = proxy.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["reason"] is None

"""An admin port without MCPFENCE_ADMIN_TOKEN: the proxy runs, the admin API does not."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.servers import free_port, run_proxy, wait_for_port


def test_without_an_admin_token_the_admin_api_is_off_and_the_rest_runs(tmp_path: Path) -> None:
    admin_port = free_port()
    config = {
        "server": {"admin_port": admin_port},
        "storage": {"path": str(tmp_path / "routes.db")},
        "routes": [{"name": "r", "path": "/r/mcp", "upstream": {"url": f"http://127.0.0.1:{free_port()}/mcp"}}],
    }
    with run_proxy(config, tmp_path, {"MCPFENCE_ADMIN_TOKEN": ""}) as proxy:
        wait_for_port(admin_port, process=proxy.process)
        admin = f"http://127.0.0.1:{admin_port}"
        refused = httpx.post(admin + "/admin/tokens", json={"name": "x"})
        console = httpx.get(admin + "/ui/login")
        metrics = httpx.get(admin + "/metrics")
        proxied = httpx.post(proxy.url("/r/mcp"), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        output = proxy.stop()
    assert refused.status_code == 503
    assert "MCPFENCE_ADMIN_TOKEN" in refused.json()["error"]
    assert console.status_code == 503  # no token to sign in with: the console is off too
    assert metrics.status_code == 200
    assert proxied.json()["error"]["code"] == -32603  # the proxy answers: its upstream is down
    assert "the admin API is off" in output

"""stdio upstreams: the child's environment, lifetime, crashes and sharing.

See docs/reference/transports.md#stdio-upstreams.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from tests.servers import Proxy, run_proxy
from tests.transport.conftest import DOWNSTREAMS, open_session, stdio_upstream
from tests.transport.test_pairs import text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # see docs/how-to/test.md

INTERNAL_ERROR = -32603


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until_gone(pid: int, limit: float = 10.0) -> bool:
    """Whether process ``pid`` exits within ``limit`` seconds (a bound, not a timing claim)."""
    deadline = time.monotonic() + limit
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


async def child_pid(session: ClientSession) -> int:
    result = await session.call_tool("pid", {})
    return int(text_of(result))


async def test_child_sees_only_the_configured_environment(proxy: Proxy) -> None:
    async with open_session(proxy, "stdio", "streamable-http") as session:
        result = await session.call_tool("environment", {"names": ["CONFIGURED", "MCPFENCE_SECRET", "PATH"]})
    env = result.structured_content
    assert env["CONFIGURED"] == "yes"
    assert env["MCPFENCE_SECRET"] is None
    assert env["PATH"]


@pytest.mark.parametrize("downstream", DOWNSTREAMS)
async def test_each_session_gets_its_own_child(proxy: Proxy, downstream: str) -> None:
    async with (
        open_session(proxy, "stdio", downstream) as first,
        open_session(proxy, "stdio", downstream) as second,
    ):
        assert await child_pid(first) != await child_pid(second)


@pytest.mark.parametrize("downstream", DOWNSTREAMS)
async def test_ending_the_session_stops_its_child(proxy: Proxy, downstream: str) -> None:
    async with open_session(proxy, "stdio", downstream) as session:
        pid = await child_pid(session)
        assert alive(pid)
    assert await anyio.to_thread.run_sync(wait_until_gone, pid)


@pytest.mark.parametrize("downstream", DOWNSTREAMS)
async def test_crash_mid_call_is_an_internal_error_and_the_next_call_gets_a_fresh_child(
    proxy: Proxy, downstream: str
) -> None:
    async with open_session(proxy, "stdio", downstream) as session:
        before = await child_pid(session)
        with pytest.raises(MCPError) as raised:
            await session.call_tool("crash", {})
        after = await child_pid(session)
        echoed = await session.call_tool("echo", {"message": "still here"})
    assert raised.value.error.code == INTERNAL_ERROR
    assert "exited with code 3" in raised.value.error.message
    assert after != before
    assert text_of(echoed) == "still here"


async def test_shared_child_serves_every_session_without_mixing_answers(proxy: Proxy) -> None:
    async with (
        open_session(proxy, "stdio-shared", "streamable-http") as first,
        open_session(proxy, "stdio-shared", "legacy-sse") as second,
    ):
        # Both clients number their requests alike; the child must still answer each its own.
        async with anyio.create_task_group() as group:
            answers: dict[str, str] = {}

            async def call(name: str, session: ClientSession) -> None:
                result = await session.call_tool("echo", {"message": name})
                answers[name] = text_of(result)

            group.start_soon(call, "first", first)
            group.start_soon(call, "second", second)
        assert answers == {"first": "first", "second": "second"}
        assert await child_pid(first) == await child_pid(second)


def test_stderr_is_logged_with_the_route_name_and_children_stop_with_mcpfence(tmp_path: Path) -> None:
    config = {"routes": [{"name": "noisy", "path": "/noisy/mcp", "upstream": stdio_upstream()}]}

    async def shout(proxy: Proxy) -> int:
        async with open_session(proxy, "noisy", "legacy-sse") as session:
            await session.call_tool("shout", {"text": "hello from the child"})
            return await child_pid(session)

    with run_proxy(config, tmp_path) as proxy:
        pid = anyio.run(shout, proxy)
        output = proxy.stop()
    assert "route noisy: [stderr] hello from the child" in output
    assert wait_until_gone(pid)

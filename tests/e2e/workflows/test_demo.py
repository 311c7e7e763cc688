"""``mcpfence demo``: starts, prints what to give a client, and answers through the packs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.examples.client import call_error, connect
from tests.servers import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[3]
URL_LINE = re.compile(r"^\s+(ipost|postmark)\s+(http://\S+)$")
STARTUP_SECONDS = 20.0
UPDATE = "update_a_i_post_contact_by_id"


class Demo:
    """The demo's printed URLs and the ``claude_desktop_config.json`` snippet."""

    def __init__(self, lines: list[str]) -> None:
        self.urls = {m[1]: m[2] for m in map(URL_LINE.match, lines) if m}
        start = lines.index("claude_desktop_config.json:") + 1
        end = next(i for i in range(start, len(lines)) if lines[i] == "}") + 1
        self.claude_config = json.loads("\n".join(lines[start:end]))


@contextmanager
def demo_output(until: Callable[[str], bool], env: Mapping[str, str] | None = None) -> Iterator[list[str]]:
    """Run ``mcpfence demo``; yield its stdout lines up to the first that ``until`` accepts.

    It runs in its own process group so the demo upstreams it spawns end with it.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpfence", "demo", "--port", str(free_port())],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if until(lines[-1]):
                break
        yield lines
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """Run ``mcpfence demo`` and read its stdout until the snippet is complete."""
    with demo_output(lambda line: "ChatGPT" in line) as lines:
        yield Demo(lines)


async def wait_until_answering(url: str) -> None:
    """Return once the route initializes: the proxy and its upstreams may still be starting."""
    port = urlsplit(url).port
    assert port is not None
    await anyio.to_thread.run_sync(wait_for_port, port, STARTUP_SECONDS)
    with anyio.fail_after(STARTUP_SECONDS):
        while True:
            try:
                async with connect(url):
                    return
            except* MCPError:  # the proxy answers -32603 while the upstream does not listen yet
                await anyio.sleep(0.2)


def test_demo_prints_a_url_per_route(demo: Demo) -> None:
    assert set(demo.urls) == {"ipost", "postmark"}
    assert demo.urls["ipost"].endswith("/ipost/mcp")


def test_demo_prints_a_claude_desktop_config_for_each_route(demo: Demo) -> None:
    servers = demo.claude_config["mcpServers"]

    assert servers["ipost-via-mcpfence"]["args"][-1] == demo.urls["ipost"]
    assert servers["postmark-via-mcpfence"]["args"][-1] == demo.urls["postmark"]


@pytest.mark.anyio
async def test_demo_ipost_url_answers_through_the_policy_packs(demo: Demo) -> None:
    await wait_until_answering(demo.urls["ipost"])
    async with connect(demo.urls["ipost"]) as session:
        message = await call_error(session, UPDATE, {"id": "100001", "GlobalEmailStatus": None})

    assert message.startswith("Blocked by policy ipost-contact-status-not-null")


@dataclass(frozen=True)
class Stopped:
    """How ``mcpfence demo`` ended after a signal: its status, its stderr, and whether any
    process it started (the demo upstreams) outlived it."""

    status: int
    stderr: str
    leftovers: bool


@pytest.fixture(scope="module", params=[signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def stopped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stopped:
    """The demo, once it printed what to give a client, sent ``request.param`` alone (as
    ``docker stop`` sends SIGTERM, or a shell's ``kill -INT``), its upstreams untouched."""
    stderr_path = tmp_path_factory.mktemp("demo") / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcpfence", "demo", "--port", str(free_port())],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:  # until it is ready, or its output ends
                if "ChatGPT" in line:
                    break
            process.send_signal(request.param)
            status = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
    try:
        os.killpg(process.pid, 0)  # anything left in the demo's process group?
        leftovers = True
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        leftovers = False
    return Stopped(status, stderr_path.read_text(), leftovers)


def test_a_stopped_demo_exits_with_status_0(stopped: Stopped) -> None:
    assert stopped.status == 0


def test_a_stopped_demo_prints_no_traceback(stopped: Stopped) -> None:
    assert "Traceback" not in stopped.stderr


def test_a_stopped_demo_stops_its_upstreams(stopped: Stopped) -> None:
    assert not stopped.leftovers

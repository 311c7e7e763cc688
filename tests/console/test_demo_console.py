"""``mcpfence demo`` prints the console's URL and how to sign in, and the console shows
the calls a client makes through the demo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from tests.console.conftest import csrf_of
from tests.replay.conftest import MARIA_EDIT
from tests.servers import free_port
from tests.upstreams.client import call_error, connect
from tests.workflows.test_demo import wait_until_answering

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


@dataclass
class DemoConsole:
    ipost_url: str
    console_url: str
    token: str


@pytest.fixture(scope="module")
def demo_console() -> Iterator[DemoConsole]:
    env = {k: v for k, v in os.environ.items() if k != "MCPFENCE_ADMIN_TOKEN"}
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
        while not any("decision log:" in line for line in lines) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        text = "\n".join(lines)
        console = re.search(r"^Compliance console: (http://\S+/ui/)$", text, re.M)
        token = re.search(r"^  sign in with the admin token (\S+)$", text, re.M)
        ipost = re.search(r"^\s+ipost\s+(http://\S+)$", text, re.M)
        assert console and token and ipost, f"exit {process.poll()}:\n{text}"
        yield DemoConsole(ipost[1], console[1], token[1])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_the_printed_token_signs_in_to_the_printed_console(demo_console: DemoConsole) -> None:
    with httpx.Client(base_url=demo_console.console_url.removesuffix("/ui/"), timeout=30) as client:
        form = client.get("/ui/login")
        client.post("/ui/login", data={"token": demo_console.token, "csrf": csrf_of(form.text)})
        page = client.get("/ui/policies")
    assert page.status_code == 200
    assert 'id="ipost-no-silent-resubscribe"' in page.text


def test_a_call_blocked_in_the_demo_shows_on_the_decisions_page(demo_console: DemoConsole) -> None:
    async def blocked_edit() -> None:
        await wait_until_answering(demo_console.ipost_url)
        async with connect(demo_console.ipost_url) as session:
            await call_error(session, "update_a_i_post_contact_by_id", MARIA_EDIT)

    anyio.run(blocked_edit)
    with httpx.Client(base_url=demo_console.console_url.removesuffix("/ui/"), timeout=30) as client:
        form = client.get("/ui/login")
        client.post("/ui/login", data={"token": demo_console.token, "csrf": csrf_of(form.text)})
        deadline = time.monotonic() + 20
        while "Blocked by policy ipost-no-silent-resubscribe" not in (
            page := client.get("/ui/decisions", params={"decision": "deny"}).text
        ) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert "Blocked by policy ipost-no-silent-resubscribe" in page

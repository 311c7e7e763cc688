"""``mcpfence demo`` prints the console's URL and how to sign in, and the console shows
the calls a client makes through the demo."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx
import pytest

from tests.console.conftest import csrf_of
from tests.e2e.workflows.test_demo import demo_output, wait_until_answering
from tests.examples.client import call_error, connect
from tests.replay.conftest import MARIA_EDIT

pytestmark = pytest.mark.slow  # see docs/how-to/test.md


@dataclass
class DemoConsole:
    ipost_url: str
    console_url: str
    token: str


@pytest.fixture(scope="module")
def demo_console() -> Iterator[DemoConsole]:
    env = {k: v for k, v in os.environ.items() if k != "MCPFENCE_ADMIN_TOKEN"}
    with demo_output(lambda line: "decision log:" in line, env) as lines:
        text = "\n".join(lines)
        console = re.search(r"^Compliance console: (http://\S+/ui/)$", text, re.M)
        token = re.search(r"^  sign in with the admin token (\S+)$", text, re.M)
        ipost = re.search(r"^\s+ipost\s+(http://\S+)$", text, re.M)
        assert console and token and ipost, text
        yield DemoConsole(ipost[1], console[1], token[1])


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

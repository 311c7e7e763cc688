"""A decision log recorded from the seed workflows: the demo upstreams driven through
mcpfence (shipped packs, ``record_arguments: true``) by the official SDK client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.e2e.workflows.conftest import World, _upstreams, demo_config
from tests.examples.client import call, call_error, connect
from tests.servers import run_proxy

MARIA = "100002"  # opted out of email
MARIA_EDIT = {"id": MARIA, "Email": "maria.garcia@example.com", "LastName": "Garcia-Lopez"}
PASSWORD_RESET: dict[str, Any] = {
    "From": "accounts@acme.example",
    "To": "john.doe@example.com",
    "TemplateAlias": "password-reset",
    "TemplateModel": {"name": "John", "product_name": "Acme", "action_url": "https://acme.example/r"},
    "MessageStream": "outbound",
}


@dataclass
class SeedLog:
    """The recorded log, the config that wrote it, and each line as JSON."""

    path: Path
    config: Path

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.path.read_text("utf-8").splitlines()]


async def seed_workflows(world: World) -> None:
    """Four sessions: a read-then-edit (rewritten from history), an unread edit (denied),
    a transactional send (allowed) and a mixed-case suppression (rewritten)."""
    async with connect(world.ipost_url) as session:
        await call(session, "get_single_i_post_contact_by_id", {"id": MARIA})
        await call(session, "update_a_i_post_contact_by_id", MARIA_EDIT)
    async with connect(world.ipost_url) as session:
        await call_error(session, "update_a_i_post_contact_by_id", MARIA_EDIT)
    async with connect(world.postmark_url) as session:
        await call(session, "create_a_postmark_templated_email", PASSWORD_RESET)
    async with connect(world.ipost_url) as session:
        suppression = {"list_id": "401", "emails": ["Ann@X.example "]}
        await call(session, "create_a_i_post_md_5_list_contact", suppression)


@pytest.fixture(scope="session")
def seed_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedLog]:
    directory = tmp_path_factory.mktemp("seed-log")
    log = directory / "decisions.jsonl"
    with _upstreams() as upstream:
        config = demo_config(upstream, directory)
        config["decision_log"] = {"path": str(log), "record_arguments": True}
        with run_proxy(config, directory) as proxy:
            urls = proxy.url("/ipost/mcp"), proxy.url("/postmark/mcp")
            anyio.run(seed_workflows, World(upstream.ipost, upstream.postmark, *urls))
        yield SeedLog(log, proxy.config_path)

"""The shipped packs and example configs as a user runs them: ``mcpfence check`` and ``test``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mcpfence import policy_cli
from mcpfence.config import load_config
from mcpfence.policy.loader import load_policy_set, policy_files
from tests.e2e.workflows.conftest import World
from tests.examples.client import connect

REPO = Path(__file__).resolve().parents[3]


def test_every_pack_test_case_passes() -> None:
    out = io.StringIO()

    assert policy_cli.test([REPO / "policies"], out) == 0, out.getvalue()
    assert out.getvalue().splitlines()[-1].endswith(" passed, 0 failed")


@pytest.mark.parametrize("config", ["demo.yaml", "minimal.yaml"])
def test_packs_and_example_config_check_clean_together(config: str) -> None:
    out = io.StringIO()

    assert policy_cli.check([REPO / "policies", REPO / "examples" / config], out) == 0, out.getvalue()


def test_demo_config_loads_both_packs() -> None:
    config = load_config(REPO / "examples" / "demo.yaml")

    vendors = {p.name.split("-")[0] for p in load_policy_set(config.policy_paths).policies}

    assert vendors == {"ipost", "postmark"}
    assert [route.name for route in config.routes] == ["ipost", "postmark"]


def test_a_folder_reached_by_two_paths_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "a.yaml").write_text("")
    monkeypatch.chdir(tmp_path)

    files, _ = policy_files([Path("policies"), tmp_path / "sub" / ".." / "policies"])

    assert files == [Path("policies/a.yaml")]


@pytest.mark.anyio
async def test_fenced_tool_descriptions_carry_the_packs_guidance(fenced: World) -> None:
    async with connect(fenced.postmark_url) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}

    assert "Always set MessageStream" in (tools["create_a_postmark_email"].description or "")

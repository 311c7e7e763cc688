"""``mcpfence routes`` and ``mcpfence tokens`` against a running admin API."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import pytest

from mcpfence.access.tokens import hash_token
from mcpfence.admin.client_cli import register
from tests.servers import free_port

from .conftest import ADMIN_TOKEN, Admin


@pytest.fixture
def cli(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    monkeypatch.setenv("MCPFENCE_ADMIN_TOKEN", ADMIN_TOKEN)
    parser = argparse.ArgumentParser(prog="mcpfence")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def run(parser: argparse.ArgumentParser, admin: Admin, *argv: str) -> int:
    args = parser.parse_args([*argv[:2], "--admin-url", admin.url, *argv[2:]])
    return int(args.func(args))


def test_routes_create_prints_only_the_url(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(cli, admin, "routes", "create", "acme", "--upstream", "crm", "--methods", "read")
    out = capsys.readouterr().out
    assert code == 0
    token = out.strip().rsplit("/", 1)[1]
    route = admin.store.route_by_token_hash(hash_token(token))
    assert route is not None
    assert route.methods == ("read",)


def test_routes_create_passes_every_option(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["routes", "create", "acme", "--upstream", "crm", "--tags", "contacts,journeys"]
    argv += ["--expires-in", "2h", "--require-api-token-auth", "--json"]
    assert run(cli, admin, *argv) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["config"] == {"methods": ["read", "write", "custom"], "tags": ["contacts", "journeys"]}
    assert created["require_api_token_auth"] is True
    expires = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=1) < expires <= timedelta(hours=2)


def test_routes_list_shows_a_table(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    run(cli, admin, "routes", "create", "acme", "--upstream", "crm", "--methods", "read")
    capsys.readouterr()
    assert run(cli, admin, "routes", "list") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "NAME", "UPSTREAM", "METHODS", "TAGS", "EXPIRES", "API-TOKEN"]
    assert row.split()[1:] == ["acme", "crm", "read", "-", "never", "no"]


def test_routes_revoke_deletes_the_route(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    run(cli, admin, "routes", "create", "acme", "--upstream", "crm")
    route_id = admin.store.routes()[0].id
    assert run(cli, admin, "routes", "revoke", route_id) == 0
    assert admin.store.routes() == []


def test_tokens_create_list_and_revoke(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cli, admin, "tokens", "create", "agent") == 0
    token = capsys.readouterr().out.strip()
    assert [t.token_sha256 for t in admin.store.api_tokens()] == [hash_token(token)]
    run(cli, admin, "tokens", "list", "--json")
    assert [t["name"] for t in json.loads(capsys.readouterr().out)] == ["agent"]
    assert run(cli, admin, "tokens", "revoke", "agent") == 0
    assert admin.store.api_tokens() == []


def test_tokens_list_shows_an_aligned_table(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    run(cli, admin, "tokens", "create", "agent-with-a-long-name")
    capsys.readouterr()
    assert run(cli, admin, "tokens", "list") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "CREATED"]
    name, created = row.split()
    assert name == "agent-with-a-long-name"
    assert created == admin.store.api_tokens()[0].created_at.isoformat()
    assert row.index(created) == header.index("CREATED")


def test_api_errors_print_one_line_and_exit_1(
    cli: argparse.ArgumentParser, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(cli, admin, "routes", "revoke", "nope") == 1
    assert capsys.readouterr().err == "error: 404: no route nope\n"


def test_unreachable_admin_api_is_reported(
    cli: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    args = cli.parse_args(["tokens", "list", "--admin-url", f"http://127.0.0.1:{free_port()}"])
    assert args.func(args) == 1
    assert "cannot reach the admin API" in capsys.readouterr().err


def test_missing_admin_token_is_reported(
    cli: argparse.ArgumentParser,
    admin: Admin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("MCPFENCE_ADMIN_TOKEN")
    assert run(cli, admin, "tokens", "list") == 1
    assert capsys.readouterr().err == "error: MCPFENCE_ADMIN_TOKEN is not set\n"

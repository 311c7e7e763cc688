"""``mcpfence routes ...`` and ``mcpfence tokens ...``: thin clients of the admin API.

Every leaf command sets ``func`` to :func:`run`: ``args.func(args)`` runs it and
returns the exit code. Secrets (route URLs, API tokens) go to stdout alone so scripts can capture
them; they are shown only once, by the admin API, at creation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mcpfence.access.exposure import TOOL_KINDS
from mcpfence.admin.app import ADMIN_TOKEN_ENV

DEFAULT_ADMIN_URL = "http://127.0.0.1:8081"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class AdminError(Exception):
    """The admin API refused, or could not be reached; the message says which."""


def admin_request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One authenticated JSON call to the admin API; ``None`` for an empty answer."""
    token = os.environ.get(ADMIN_TOKEN_ENV)
    if not token:
        raise AdminError(f"{ADMIN_TOKEN_ENV} is not set")
    request = urllib.request.Request(
        args.admin_url.rstrip("/") + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise AdminError(f"{exc.code}: {_error_message(exc.read())}") from None
    except urllib.error.URLError as exc:
        raise AdminError(f"cannot reach the admin API at {args.admin_url}: {exc.reason}") from None
    return json.loads(payload) if payload else None


def _error_message(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["error"])
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace")


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _expires_in(value: str) -> str:
    """``30m``, ``12h``, ``7d`` from now, as ISO-8601 UTC."""
    match = _DURATION.match(value)
    if match is None:
        raise argparse.ArgumentTypeError("use a number and a unit: 90s, 30m, 12h or 7d")
    delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return (datetime.now(UTC) + delta).isoformat()


def _print_listing(
    args: argparse.Namespace, items: list[Any], header: list[str], row: Callable[[Any], list[str]]
) -> None:
    """``items`` as JSON with ``--json`` (for scripts), else as an aligned table."""
    if args.json:
        print(json.dumps(items, indent=2))
        return
    rows = [header, *(row(item) for item in items)]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(header))]
    for cells in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())


def routes_create(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "upstream": args.upstream,
        "config": {"methods": args.methods, "tags": args.tags},
        "expires_at": args.expires_at,
        "require_api_token_auth": args.require_api_token_auth,
    }
    route = admin_request(args, "POST", "/admin/routes", body)
    print(json.dumps(route, indent=2) if args.json else route["url"])
    print("The URL is shown only once; store it now.", file=sys.stderr)
    return 0


def routes_list(args: argparse.Namespace) -> int:
    _print_listing(
        args,
        admin_request(args, "GET", "/admin/routes")["routes"],
        ["ID", "NAME", "UPSTREAM", "METHODS", "TAGS", "EXPIRES", "API-TOKEN"],
        lambda r: [
            r["id"],
            r["name"],
            r["upstream"],
            ",".join(r["config"]["methods"]),
            ",".join(r["config"]["tags"]) or "-",
            r["expires_at"] or "never",
            "yes" if r["require_api_token_auth"] else "no",
        ],
    )
    return 0


def routes_revoke(args: argparse.Namespace) -> int:
    admin_request(args, "DELETE", f"/admin/routes/{args.id}")
    print(f"revoked route {args.id}", file=sys.stderr)
    return 0


def tokens_create(args: argparse.Namespace) -> int:
    created = admin_request(args, "POST", "/admin/tokens", {"name": args.name})
    print(created["token"])
    print("The token is shown only once; store it now.", file=sys.stderr)
    return 0


def tokens_list(args: argparse.Namespace) -> int:
    _print_listing(
        args,
        admin_request(args, "GET", "/admin/tokens")["tokens"],
        ["NAME", "CREATED"],
        lambda t: [t["name"], t["created_at"]],
    )
    return 0


def tokens_revoke(args: argparse.Namespace) -> int:
    admin_request(args, "DELETE", f"/admin/tokens/{args.name}")
    print(f"revoked API token {args.name}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen leaf command; admin API errors become one line and exit 1."""
    try:
        return int(args.command(args))
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``routes`` and ``tokens`` to the ``mcpfence`` command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--admin-url",
        default=os.environ.get("MCPFENCE_ADMIN_URL", DEFAULT_ADMIN_URL),
        help=f"admin API base URL (default {DEFAULT_ADMIN_URL}); token from {ADMIN_TOKEN_ENV}",
    )
    listing = argparse.ArgumentParser(add_help=False, parents=[common])
    listing.add_argument("--json", action="store_true", help="print JSON")

    routes = subparsers.add_parser("routes", help="token routes: /mcp/<token> URLs")
    route_commands = routes.add_subparsers(dest="routes_command", required=True)
    create = route_commands.add_parser("create", parents=[listing], help="create a token route")
    create.add_argument("name")
    create.add_argument("--upstream", required=True, help="a route name of the config file")
    create.add_argument("--methods", type=_csv, default=list(TOOL_KINDS))
    create.add_argument("--tags", type=_csv, default=[])
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-at", help="ISO-8601 time")
    expiry.add_argument("--expires-in", dest="expires_at", type=_expires_in, help="30m, 12h, 7d")
    create.add_argument("--require-api-token-auth", action="store_true")
    create.set_defaults(func=run, command=routes_create)
    route_commands.add_parser("list", parents=[listing]).set_defaults(func=run, command=routes_list)
    revoke = route_commands.add_parser("revoke", parents=[common], help="delete a route")
    revoke.add_argument("id")
    revoke.set_defaults(func=run, command=routes_revoke)

    tokens = subparsers.add_parser("tokens", help="API tokens for require_api_token_auth routes")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    token_create = token_commands.add_parser("create", parents=[common])
    token_create.add_argument("name")
    token_create.set_defaults(func=run, command=tokens_create)
    token_commands.add_parser("list", parents=[listing]).set_defaults(func=run, command=tokens_list)
    token_revoke = token_commands.add_parser("revoke", parents=[common])
    token_revoke.add_argument("name")
    token_revoke.set_defaults(func=run, command=tokens_revoke)

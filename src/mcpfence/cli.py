"""The ``mcpfence`` command line (docs/reference/cli.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from mcpfence import __version__
from mcpfence.admin import client_cli
from mcpfence.config import ConfigError
from mcpfence.urls import RedactingFormatter
from mcpfence.yamlsource import SourceError

# Exit code for unusable input (a bad config file or environment); check/test use 1.
EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcpfence", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mcpfence {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", required=True, type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the ports (needs cluster mode)"
    )

    demo = commands.add_parser("demo", help="run the demo upstreams behind mcpfence")
    demo.add_argument("--port", type=int)

    check = commands.add_parser("check", help="validate config and policy files")
    check.add_argument("paths", nargs="+", type=Path)

    test = commands.add_parser("test", help="run policy test files")
    test.add_argument("paths", nargs="+", type=Path)

    explain = commands.add_parser("explain", help="evaluate one call without forwarding it")
    explain.add_argument("--config", required=True, type=Path)
    explain.add_argument("--route", required=True)
    explain.add_argument("--tool", required=True)
    explain.add_argument("--args", required=True, help="the call's arguments as a JSON object")
    explain.add_argument("--json", action="store_true", help="print one JSON object")
    explain.add_argument(
        "--input-schema", help="the tool's inputSchema as JSON: also run the built-in argument check"
    )
    explain.add_argument(
        "--now", type=_timestamp, help="the time `now` reads, ISO 8601 with a zone (default: the clock)"
    )
    replay = commands.add_parser("replay", help="re-decide recorded calls with other policies")
    replay.add_argument("--config", required=True, type=Path, help="the config that wrote the log")
    replay.add_argument("--policies", required=True, nargs="+", type=Path, help="the candidate policies")
    replay.add_argument("--log", required=True, nargs="+", type=Path, help="decision logs (rotated ones too)")
    replay.add_argument("--since", type=_since, help="report only calls at or after this ISO-8601 time")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    for command, handler in (
        (serve, _serve), (demo, _demo), (check, _check), (test, _test), (explain, _explain),
        (replay, _replay),
    ):
        command.set_defaults(func=handler)
    client_cli.register(commands)
    return parser


def _timestamp(text: str) -> datetime:
    """An ISO 8601 time with its zone (``2026-01-01T00:00:00Z``): a policy's ``now`` is absolute."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone; add Z or +HH:MM")
    return moment


def _serve(args: argparse.Namespace) -> int:
    from mcpfence.config import load_config
    from mcpfence.server import serve
    from mcpfence.workers import check_workers, run_workers

    config = load_config(args.config)
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        config = config.model_copy(update={"server": config.server.model_copy(update=overrides)})
    check_workers(config, args.workers)
    if args.workers == 1:
        serve(config)
        return 0
    return run_workers(config, args.workers, lambda sockets: serve(config, sockets=sockets))


def _demo(args: argparse.Namespace) -> int:
    from mcpfence.demo import run_demo

    return run_demo(args.port)


def _check(args: argparse.Namespace) -> int:
    from mcpfence import policy_cli

    return policy_cli.check(args.paths)


def _test(args: argparse.Namespace) -> int:
    from mcpfence import policy_cli

    return policy_cli.test(args.paths, sys.stdout)


def _explain(args: argparse.Namespace) -> int:
    from mcpfence import policy_cli

    return policy_cli.explain(
        args.config, args.route, args.tool, args.args, args.json, sys.stdout, args.input_schema, args.now
    )


def _since(text: str) -> datetime:
    from mcpfence.replay.records import parse_time

    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None


def _replay(args: argparse.Namespace) -> int:
    from mcpfence.replay import command

    return command.run(args.config, args.policies, args.log, args.since, args.json, sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SourceError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIG
    except ConfigError as error:
        print(f"mcpfence: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG

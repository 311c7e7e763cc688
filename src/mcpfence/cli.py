"""The ``mcpfence`` command line (SPEC §1)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mcpfence.yamlsource import SourceError

# Exit codes: 1 for findings (check/test failures), 2 for unusable input (bad config).
EXIT_FINDINGS = 1
EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcpfence", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", required=True, type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    return parser


def _serve(args: argparse.Namespace) -> int:
    from mcpfence.config import load_config
    from mcpfence.server import serve

    try:
        config = load_config(args.config)
    except SourceError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIG
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        config = config.model_copy(update={"server": config.server.model_copy(update=overrides)})
    serve(config)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    handlers = {"serve": _serve}
    return handlers[args.command](args)

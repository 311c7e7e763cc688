"""``mcpfence demo``: the demo upstreams and the proxy with the shipped policy packs.

The demo servers and packs live in the source tree (``examples/``, ``policies/``);
a wheel carries a copy of them (made by setup.py), so the demo runs from an
installed package as from a checkout, where ``make demo`` is its front door.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from mcpfence.admin.app import ADMIN_TOKEN_ENV
from mcpfence.config import Config, ConfigError, load_config
from mcpfence.server import serve

UPSTREAM_SCRIPTS = {"ipost": "ipost.py", "postmark": "postmark.py"}


def find_examples() -> Path:
    """The ``examples/`` folder the wheel carries, else that of the checkout this module is in."""
    here = Path(__file__).resolve().parent
    candidates = (here / "demo_files" / "examples", here.parents[1] / "examples")
    for candidate in candidates:
        if (candidate / "demo.yaml").is_file():
            return candidate
    raise ConfigError(
        "the demo's files are missing (looked for "
        + " and ".join(str(c / "demo.yaml") for c in candidates)
        + "); reinstall mcpfence from a wheel, or run `make demo` in a checkout"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"demo upstream exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"demo upstream did not listen on port {port} within {timeout:g}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()


def _start_upstreams(config: Config, examples: Path, stack: ExitStack) -> Config:
    """Start one demo server per route on a free port; point the route at it."""
    routes = []
    for route in config.routes:
        port = _free_port()
        script = examples / "upstreams" / UPSTREAM_SCRIPTS[route.name]
        process = subprocess.Popen([sys.executable, str(script), "--port", str(port)])
        stack.callback(_stop, process)
        _wait_for_port(port, process)
        upstream = route.upstream.model_copy(update={"url": f"http://127.0.0.1:{port}/mcp"})
        routes.append(route.model_copy(update={"upstream": upstream}))
    return config.model_copy(update={"routes": tuple(routes)})


def _with_console(config: Config, folder: Path) -> tuple[Config, str]:
    """An admin listener for the console, and a decision log it can read (with replay fields).

    The admin token comes from ``MCPFENCE_ADMIN_TOKEN``, else a fresh one is made for
    this run; the returned hint says how to sign in.
    """
    token = os.environ.get(ADMIN_TOKEN_ENV)
    hint = f"the admin token in {ADMIN_TOKEN_ENV}"
    if not token:
        token = os.environ[ADMIN_TOKEN_ENV] = secrets.token_urlsafe(18)
        hint = f"the admin token {token}"
    server = config.server.model_copy(update={"admin_port": _free_port()})
    log = config.decision_log.model_copy(
        update={"path": str(folder / "decisions.jsonl"), "record_arguments": True}
    )
    storage = config.storage.model_copy(update={"path": str(folder / "mcpfence.db")})
    return config.model_copy(update={"server": server, "decision_log": log, "storage": storage}), hint


def client_snippets(config: Config, sign_in: str = "") -> str:
    """What to paste into Claude Desktop or a ChatGPT connector to use the demo."""
    base = f"http://{config.server.host}:{config.server.port}"
    servers = {
        f"{route.name}-via-mcpfence": {"command": "npx", "args": ["-y", "mcp-remote", base + route.path]}
        for route in config.routes
    }
    lines = ["", "mcpfence demo is running. Give a client these MCP URLs:"]
    lines += [f"  {route.name:10} {base}{route.path}" for route in config.routes]
    if config.server.admin_port is not None:
        lines += [
            "",
            f"Compliance console: http://{config.server.admin_host}:{config.server.admin_port}/ui/",
            f"  sign in with {sign_in}",
            f"  decision log: {config.decision_log.path}",
        ]
    lines += ["", "claude_desktop_config.json:", json.dumps({"mcpServers": servers}, indent=2)]
    lines += ["", "ChatGPT (Settings > Connectors > Add custom connector): the URLs above, no auth.", ""]
    return "\n".join(lines)


class _QuietStop:
    """SIGTERM and SIGINT (Ctrl-C) end the demo with status 0 and no traceback, whenever they come.

    Before the proxy serves, the signal raises SystemExit in plain code, so the ExitStack
    stops the demo upstreams. While it serves, uvicorn's own handlers take the signal, shut
    the listeners down and hand it back here: raised then, inside the event loop, an
    exception would surface as a traceback, so it is only noted. One that arrives while the
    proxy starts, before uvicorn listens for it, is handed to uvicorn once the listeners are up.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.serving = False
        self.caught: int | None = None
        self.listen()

    def listen(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._caught)

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        if not self.serving:
            raise SystemExit(0)
        self.caught = signum

    def ready(self) -> None:
        """The listeners are up: pass on a signal that came while they were starting."""
        if self.caught is not None:
            signal.raise_signal(self.caught)

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        """While the proxy serves; once it has stopped, a signal ends the demo at once again."""
        self.serving = True
        try:
            yield
        finally:
            self.serving = False
            self.listen()  # uvicorn restored what it found, which may not be ours


def run_demo(port: int | None) -> int:
    stop = _QuietStop()
    examples = find_examples()
    config = load_config(examples / "demo.yaml")
    if port is not None:
        config = config.model_copy(update={"server": config.server.model_copy(update={"port": port})})
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcpfence-demo-")))
        config, sign_in = _with_console(config, folder)
        demo_config = _start_upstreams(config, examples, stack)

        def ready() -> None:
            print(client_snippets(demo_config, sign_in), flush=True)
            stop.ready()

        with stop.serve():
            serve(demo_config, on_ready=ready)
    return 0

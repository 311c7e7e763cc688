"""Real servers for tests: ASGI apps on loopback threads, mcpfence as a subprocess, and
mcpfence in this process behind Starlette's test client (where no socket is needed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.testclient import TestClient

from mcpfence import server
from mcpfence.config import load_config

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, and never one this
    process was given before: two ports drawn before either is bound (``admin_port,
    prometheus_port = free_port(), free_port()``) could otherwise be the same."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for_port(port: int, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Block until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def serve_asgi(app: Any, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread; yields ``http://127.0.0.1:PORT``."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Proxy:
    """A running ``mcpfence serve`` process and where to reach it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, config_path: Path) -> None:
        self.process = process
        self.port = port
        self.config_path = config_path
        self.base_url = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> str:
        """Stop the proxy and return what it printed (stdout and stderr together)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        out = self.process.stdout.read() if self.process.stdout else b""
        return out.decode(errors="replace")


def write_config(config: Mapping[str, Any], directory: Path) -> Path:
    """``config`` as ``directory/mcpfence.yaml``, the file ``mcpfence serve`` would read."""
    config_path = directory / "mcpfence.yaml"
    config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return config_path


@contextmanager
def in_process(config: Mapping[str, Any], directory: Path) -> Iterator[TestClient]:
    """mcpfence built from ``config`` in this process, its lifespan run, behind a client for
    its proxy app (``http://127.0.0.1``): for behaviour that needs no socket or process."""
    proxy = server.Proxy(load_config(write_config(config, directory)))
    with TestClient(proxy.app, base_url="http://127.0.0.1") as client:
        yield client


@contextmanager
def run_proxy(
    config: Mapping[str, Any],
    directory: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[Proxy]:
    """Write ``config`` to ``directory/mcpfence.yaml`` and run ``mcpfence serve`` on it."""
    port = free_port()
    config = {**config, "server": {"host": "127.0.0.1", **config.get("server", {}), "port": port}}
    config_path = write_config(config, directory)
    process = subprocess.Popen(
        [sys.executable, "-m", "mcpfence", "serve", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    proxy = Proxy(process, port, config_path)
    try:
        wait_for_port(port, process=process)
        yield proxy
    finally:
        proxy.stop()

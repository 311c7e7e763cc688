"""stdio upstreams: an MCP server mcpfence runs as a child process.

The child gets only the environment the route configures (``upstream.env``)
plus what a program needs to start at all (PATH, HOME, locale): mcpfence's own
secrets must not leak into a third-party server. Messages are newline-delimited
JSON on stdin/stdout; stderr lines go to mcpfence's log under the route's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from mcpfence import jsonrpc
from mcpfence.jsonrpc import JsonRpcError, Message
from mcpfence.transport.upstream.client import UpstreamError
from mcpfence.transport.upstream.link import OnClosed, OnMessage

log = logging.getLogger("mcpfence.upstream")

# Variables a child inherits so that it can start; everything else is configured.
INHERITED_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "USER", "LOGNAME")
MAX_LINE_BYTES: Final = 16 * 1024 * 1024
STOP_GRACE_SECONDS: Final = 2.0


def child_environment(configured: Mapping[str, str]) -> dict[str, str]:
    """The child's whole environment: the inherited minimum, then ``upstream.env``."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update(configured)
    return env


class StdioLink:
    """One child process speaking MCP over its stdin and stdout."""

    def __init__(
        self, route: str, command: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> None:
        self.route = route
        self.command = tuple(command)
        self.env = child_environment(env)
        self.cwd = cwd
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def label(self) -> str:
        return f"stdio server `{shlex.join(self.command)}`"

    async def start(self, on_message: OnMessage, on_closed: OnClosed) -> None:
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                limit=MAX_LINE_BYTES,
                start_new_session=True,
            )
        except OSError as exc:
            raise UpstreamError(f"{self.label} could not be started: {exc}") from None
        log.info("route %s: started %s (pid %d)", self.route, self.label, self._process.pid)
        self._tasks = [
            asyncio.create_task(self._read(self._process, on_message, on_closed)),
            asyncio.create_task(self._log_stderr(self._process)),
        ]

    async def send(self, message: Message) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise UpstreamError(f"{self.label} is not running")
        try:
            process.stdin.write(jsonrpc.dumps(message) + b"\n")
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise UpstreamError(f"{self.label} exited") from None

    async def close(self) -> None:
        """Close stdin (the MCP way to ask a stdio server to stop), then terminate, then kill."""
        process, self._process = self._process, None
        for task in self._tasks:
            task.cancel()
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        for stop in (None, process.terminate, process.kill):
            if stop is not None:
                with contextlib.suppress(ProcessLookupError):
                    stop()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
                break
            except TimeoutError:
                continue
        log.info("route %s: stopped %s", self.route, self.label)

    async def _read(
        self, process: asyncio.subprocess.Process, on_message: OnMessage, on_closed: OnClosed
    ) -> None:
        assert process.stdout is not None
        reason = "closed its stdout"
        try:
            while line := await process.stdout.readline():
                if not line.strip():
                    continue
                try:
                    message = jsonrpc.validate_message(jsonrpc.loads(line))
                except JsonRpcError:
                    log.warning("route %s: %s wrote a line that is not JSON-RPC", self.route, self.label)
                    continue
                await on_message(message)
        except ValueError:
            reason = f"wrote a line longer than {MAX_LINE_BYTES} bytes"
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        if self._process is not process:
            return  # closed on purpose
        code = await process.wait()
        log.warning("route %s: %s %s (exit code %d)", self.route, self.label, reason, code)
        await on_closed(f"exited with code {code}")

    async def _log_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        with contextlib.suppress(ValueError):
            while line := await process.stderr.readline():
                log.info("route %s: [stderr] %s", self.route, line.decode("utf-8", "replace").rstrip())

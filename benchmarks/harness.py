"""What every benchmark shares: the request, how servers are started, and how wrk is run.

One request body and one header set serve wrk (through ``tools_call.lua``), the preflight
check and the memory soak, so every target is measured on exactly the same call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive

from tests.servers import free_port as free_port  # re-exported for run.py
from tests.servers import wait_for_port

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "tools_call.lua"

TOOL = "send_email"
ARGUMENTS: dict[str, Any] = {
    "to": "ops@example.com",
    "subject": "Weekly report",
    "body": "All systems nominal.",
    "priority": 3,
}
TOOL_RESULT_TEXT = "sent"
BODY = json.dumps(
    {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
     "params": {"name": TOOL, "arguments": ARGUMENTS}},
    separators=(",", ":"),
).encode()
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}


@dataclass(frozen=True)
class WrkResult:
    """One wrk run, as printed by ``done()`` in ``tools_call.lua``."""

    requests: int
    duration_us: int
    p50_us: int
    p99_us: int
    errors: int
    non_2xx: int

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)


def run_wrk(url: str, connections: int, seconds: float, threads: int = 1) -> WrkResult:
    """Run wrk with ``tools_call.lua`` against ``url`` and parse its result line."""
    env = {**os.environ, "BENCH_BODY": BODY.decode(),
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in HEADERS.items())}
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "5s", "-s", str(LUA_SCRIPT), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK_RESULT "))
    return WrkResult(**json.loads(line.removeprefix("WRK_RESULT ")))


def preflight(url: str) -> None:
    """Fail loudly unless ``url`` answers the benchmark call with the upstream's tool result.

    wrk only counts HTTP statuses; a target that answered 200 with a JSON-RPC error would
    otherwise be measured as if it worked.
    """
    request = urllib.request.Request(url, data=BODY, headers=HEADERS, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        message = json.loads(response.read())
    result = message.get("result") or {}
    texts = [item.get("text") for item in result.get("content", [])]
    if result.get("isError") or texts != [TOOL_RESULT_TEXT]:
        raise RuntimeError(f"{url} did not return the tool result: {message}")


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


@contextmanager
def running(command: Sequence[str], port: int, env: Mapping[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` from the repository root, wait for ``port``, stop it on exit."""
    # A file, not a pipe: a chatty server never blocks on a full pipe buffer.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            list(command), cwd=REPO, env={**os.environ, **(env or {})},
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_for_port(port, process=process)
            except (RuntimeError, TimeoutError) as exc:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise RuntimeError(f"{' '.join(command)} failed to start:\n{output}") from exc
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


@dataclass(frozen=True)
class Measurement:
    """One target: throughput at 16 connections and latency at one, medians over rounds."""

    target: str
    rps: float
    p50_us: float
    p99_us: float


def _checked(target: str, result: WrkResult) -> WrkResult:
    if result.errors or result.non_2xx:
        raise RuntimeError(f"{target}: {result.errors} socket errors, "
                           f"{result.non_2xx} non-2xx responses")
    return result


def measure_all(targets: Mapping[str, str], seconds: float, rounds: int = 3,
                ) -> list[Measurement]:
    """Measure every target (name -> URL) in interleaved rounds and keep the medians.

    Interleaving spreads the load other users put on a shared machine over all targets
    alike, instead of penalising whichever target ran while it peaked. Each round runs
    c=16 for ``seconds / rounds`` and c=1 for half that (at least 1 s each).
    """
    for target, url in targets.items():
        preflight(url)
        _checked(target, run_wrk(url, connections=16, seconds=1, threads=2))  # warm-up
    runs: dict[str, list[tuple[WrkResult, WrkResult]]] = {target: [] for target in targets}
    for _ in range(rounds):
        for target, url in targets.items():
            throughput = run_wrk(url, connections=16, seconds=seconds / rounds, threads=2)
            latency = run_wrk(url, connections=1, seconds=seconds / rounds / 2)
            runs[target].append((_checked(target, throughput), _checked(target, latency)))
    return [
        Measurement(
            target,
            rps=median(t.rps for t, _ in results),
            p50_us=median(lat.p50_us for _, lat in results),
            p99_us=median(lat.p99_us for _, lat in results),
        )
        for target, results in runs.items()
    ]


def markdown_table(rows: Sequence[Measurement], baseline: str = "direct") -> str:
    """The results as a Markdown table; added p50 is relative to the ``baseline`` row."""
    base = next((row.p50_us for row in rows if row.target == baseline), None)
    lines = ["| target | req/s (c=16) | p50 (c=1) | p99 (c=1) | added p50 vs direct |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        added = "" if base is None else f"{(row.p50_us - base) / 1000:+.2f} ms"
        lines.append(f"| {row.target} | {row.rps:,.0f} | {row.p50_us / 1000:.2f} ms "
                     f"| {row.p99_us / 1000:.2f} ms | {added} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Service:
    """A server started for a benchmark: where to send the call, and its process."""

    url: str
    pid: int


@contextmanager
def service(command: Sequence[str], port: int, path: str = "/mcp",
            env: Mapping[str, str] | None = None) -> Iterator[Service]:
    """``running`` for a server whose MCP endpoint is ``path`` on ``port``."""
    with running(command, port, env) as process:
        yield Service(f"http://127.0.0.1:{port}{path}", process.pid)


async def read_body(receive: Receive) -> bytes:
    """The whole request body of a raw ASGI request."""
    body = b""
    more = True
    while more:
        event = await receive()
        body += event.get("body", b"")
        more = event.get("more_body", False)
    return body


def run_uvicorn(app: ASGIApp, port: int) -> None:
    """Serve a benchmark ASGI app the fastest way uvicorn can (uvloop, httptools, no logs)."""
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                lifespan="off", access_log=False, log_level="warning")


def fast_upstream() -> AbstractContextManager[Service]:
    """Run ``fast_upstream.py`` on a free port."""
    port = free_port()
    return service(python_module("benchmarks.fast_upstream", "--port", str(port)), port)


def bare_forwarder(upstream: str, server: str = "asgi", client: str = "aiohttp",
                   ) -> AbstractContextManager[Service]:
    """Run ``bare_forwarder.py`` in front of the ``upstream`` URL."""
    port = free_port()
    command = python_module("benchmarks.bare_forwarder", "--port", str(port),
                            "--upstream", upstream, "--server", server, "--client", client)
    return service(command, port)


def conditions() -> str:
    """When and on what the numbers were taken; they only compare within one run."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
            f"load average {load} at start. Numbers are noisy on a shared machine; "
            "compare rows of one run only.")


def write_result(name: str, text: str) -> Path:
    """Save ``text`` as ``results/NAME`` and return the path."""
    path = BENCH_DIR / "results" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path

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
# A tool the upstream answers with an SSE stream of one event (time to first event).
SSE_TOOL = "send_email_streamed"
# A tool no benchmark policy matches: checking it should cost what a ping costs.
UNMATCHED_TOOL = "get_status"
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}


def jsonrpc_body(method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message, separators=(",", ":")).encode()


BODY = jsonrpc_body("tools/call", {"name": TOOL, "arguments": ARGUMENTS})
SSE_BODY = jsonrpc_body("tools/call", {"name": SSE_TOOL, "arguments": ARGUMENTS})
UNMATCHED_BODY = jsonrpc_body("tools/call", {"name": UNMATCHED_TOOL, "arguments": {}})
PING_BODY = jsonrpc_body("ping")


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


def run_wrk(url: str, connections: int, seconds: float, threads: int = 1, body: bytes = BODY,
            ) -> WrkResult:
    """Run wrk with ``tools_call.lua`` against ``url`` and parse its result line."""
    env = {**os.environ, "BENCH_BODY": body.decode(),
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in HEADERS.items())}
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "5s", "-s", str(LUA_SCRIPT), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK_RESULT "))
    return WrkResult(**json.loads(line.removeprefix("WRK_RESULT ")))


def preflight(url: str, body: bytes = BODY) -> None:
    """Fail loudly unless ``url`` answers ``body`` with the upstream's tool result.

    wrk only counts HTTP statuses; a target that answered 200 with a JSON-RPC error, or
    refused the call as a tool error, would otherwise be measured as if it worked. An
    event-stream answer must stay one (the SSE target times the relayed event).
    """
    request = urllib.request.Request(url, data=body, headers=HEADERS, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        streamed = response.headers.get("content-type", "").startswith("text/event-stream")
        payload = response.read()
    if body == SSE_BODY and not streamed:
        raise RuntimeError(f"{url} did not relay the event stream: {payload[:300]!r}")
    data = payload.split(b"data: ", 1)[1] if streamed else payload
    message = json.loads(data)
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
                wait_for_port(port, timeout=60, process=process)  # 10,000 policies load first
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (nginx's worker), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += cpu_seconds(int(child))
    return total


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1])


@dataclass(frozen=True)
class Measurement:
    """One target: throughput at 16 connections and latency at one, medians over rounds.

    ``cpu_us`` is the target process's CPU time per request during the c=16 runs: unlike
    req/s it hardly moves when other processes compete for the cores.
    """

    target: str
    rps: float
    p50_us: float
    p99_us: float
    p99_c16_us: float
    cpu_us: float


def _checked(target: str, result: WrkResult) -> WrkResult:
    if result.errors or result.non_2xx:
        raise RuntimeError(f"{target}: {result.errors} socket errors, "
                           f"{result.non_2xx} non-2xx responses")
    return result


def loaded(service: Service, seconds: float, body: bytes = BODY, connections: int = 16,
           ) -> tuple[WrkResult, float]:
    """One wrk run at ``connections`` and the service's CPU µs per request during it."""
    before = cpu_seconds(service.pid)
    result = run_wrk(service.url, connections=connections, seconds=seconds,
                     threads=min(2, connections), body=body)
    return result, (cpu_seconds(service.pid) - before) * 1e6 / max(1, result.requests)


def measure_all(targets: Mapping[str, Service], seconds: float, rounds: int = 3,
                ) -> list[Measurement]:
    """Measure every target in interleaved rounds and keep the medians.

    Interleaving spreads the load other users put on a shared machine over all targets
    alike, instead of penalising whichever target ran while it peaked. Each round runs
    c=16 for ``seconds / rounds`` and c=1 for half that (at least 1 s each).
    """
    for target, served in targets.items():
        preflight(served.url)
        _checked(target, run_wrk(served.url, connections=16, seconds=1, threads=2))  # warm-up
    runs: dict[str, list[tuple[WrkResult, float, WrkResult]]] = {target: [] for target in targets}
    for _ in range(rounds):
        for target, served in targets.items():
            throughput, cpu = loaded(served, seconds / rounds)
            latency = run_wrk(served.url, connections=1, seconds=seconds / rounds / 2)
            runs[target].append((_checked(target, throughput), cpu, _checked(target, latency)))
    return [
        Measurement(
            target,
            rps=median(t.rps for t, _, _ in results),
            p50_us=median(lat.p50_us for _, _, lat in results),
            p99_us=median(lat.p99_us for _, _, lat in results),
            p99_c16_us=median(t.p99_us for t, _, _ in results),
            cpu_us=median(cpu for _, cpu, _ in results),
        )
        for target, results in runs.items()
    ]


def markdown_table(rows: Sequence[Measurement], baseline: str = "direct") -> str:
    """The results as a Markdown table; added p50 is relative to the ``baseline`` row."""
    base = next((row.p50_us for row in rows if row.target == baseline), None)
    lines = ["| target | req/s (c=16) | p99 (c=16) | CPU µs/req (c=16) | p50 (c=1) | p99 (c=1) "
             "| added p50 vs direct |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        added = "" if base is None else f"{(row.p50_us - base) / 1000:+.2f} ms"
        rps = f"{row.rps:,.0f}" if row.rps >= 100 else f"{row.rps:.1f}"
        lines.append(f"| {row.target} | {rps} | {row.p99_c16_us / 1000:.2f} ms "
                     f"| {row.cpu_us:,.0f} | {row.p50_us / 1000:.2f} ms "
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


def run_uvicorn(app: ASGIApp, port: int, lifespan: str = "off") -> None:
    """Serve a benchmark ASGI app the fastest way uvicorn can (uvloop, httptools, no logs)."""
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                lifespan=lifespan, access_log=False, log_level="warning")


def fast_upstream(middleware: str | None = None) -> AbstractContextManager[Service]:
    """Run ``fast_upstream.py`` on a free port; ``middleware``: wrapped with that policy pack."""
    port = free_port()
    extra = ["--middleware", middleware] if middleware is not None else []
    return service(python_module("benchmarks.fast_upstream", "--port", str(port), *extra), port)


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

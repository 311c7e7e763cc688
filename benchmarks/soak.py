"""Soak: mixed traffic with injected faults through one mcpfence, resources sampled over time.

Not part of CI. ``python -m benchmarks.soak [--minutes 30]`` starts a faulty upstream (in
this process), mcpfence as a child process (with a policy pack, a decision log and
the admin listener), and clients that keep sending, for the whole run:

- stateless ``tools/call`` answered as JSON or as an event stream with progress;
- calls the upstream answers with 503, or with 429 and vendor rate-limit headers;
- calls whose event stream the upstream resets mid-way (connection dropped);
- calls answered by a slow drip (one byte at a time), some past the route's timeout;
- sessions: ``initialize``, calls, a server stream (GET) the client drops, ``DELETE``;
- calls that policies deny or mutate;
- every ``--reload-every`` seconds the policy file is replaced by a broken one, then
  restored: the last good set must stay in force.

Every ``--sample-every`` seconds it records mcpfence's RSS, open file descriptors, its
client and upstream TCP connections (from /proc) and its asyncio task count (written
by the child itself), and prints a table; at the end it compares the last samples with
the ones after warm-up. Any answer that is not a well-formed HTTP response (a 500, a
reset by mcpfence, a hang past the client timeout) is counted as a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn
import yaml
from starlette.types import Receive, Scope, Send

from benchmarks.harness import REPO, conditions, read_body, rss_kib, write_result
from tests.servers import free_port, wait_for_port

ROUTE = "/soak/mcp"
TIMEOUT_SECONDS = 2.0  # the route's upstream timeout: some drips outlast it
CLIENT_TIMEOUT = 30.0  # a call not answered by then is a hang
POLICIES = """\
apiVersion: mcpfence/v1
kind: ToolPolicy
metadata: {name: no-forbidden}
spec:
  match: {tools: [echo]}
  validations:
    - expression: "!args.text.contains('forbidden')"
      message: "forbidden text"
  mutations:
    - path: /text
      expression: "args.text.lowerAscii()"
"""
BROKEN_POLICIES = "apiVersion: mcpfence/v1\nkind: ToolPolicy\nmetadata: {name: [unclosed\n"
# What the clients call, with weights: the fault mix of the run.
BEHAVIOURS = {
    "echo": 30,
    "stream": 20,
    "fail": 8,
    "limited": 8,
    "reset": 8,
    "drip": 6,
    "deny": 10,
    "session": 10,
}
TOOLS = [
    {"name": name, "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}
    for name in ("echo", "stream", "fail", "limited", "reset", "drip")
]


# -- the faulty upstream ---------------------------------------------------------------


def _answer(request_id: Any, text: str) -> bytes:
    result = {"content": [{"type": "text", "text": text}], "isError": False}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode()


async def _start(
    send: Send, status: int, content_type: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [(b"content-type", content_type), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def faulty_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """A stateless MCP server whose tools misbehave on purpose, one fault per tool."""
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _start(send, 405, b"text/plain")
        await send({"type": "http.response.body", "body": b""})
        return
    message = json.loads(await read_body(receive))
    method, request_id = message.get("method"), message.get("id")
    if request_id is None:
        await _start(send, 202, b"text/plain")
        await send({"type": "http.response.body", "body": b""})
        return
    if method != "tools/call":
        result: dict[str, Any] = {"tools": TOOLS} if method == "tools/list" else {}
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "faulty", "version": "0"},
            }
        await _start(send, 200, b"application/json")
        await send(
            {
                "type": "http.response.body",
                "body": json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode(),
            }
        )
        return
    tool = message["params"]["name"]
    text = message["params"].get("arguments", {}).get("text", "")
    if tool == "fail":
        await _start(send, 503, b"text/plain")
        await send({"type": "http.response.body", "body": b"upstream overloaded"})
    elif tool == "limited":
        vendor = ((b"retry-after", b"7"), (b"x-ratelimit-limit", b"100"), (b"x-ratelimit-remaining", b"0"))
        await _start(send, 429, b"application/json", vendor)
        await send({"type": "http.response.body", "body": b'{"error": "slow down"}'})
    elif tool in ("stream", "reset", "drip"):
        await _start(send, 200, b"text/event-stream")
        progress = {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 0.5},
        }
        await send(
            {
                "type": "http.response.body",
                "body": f"data: {json.dumps(progress)}\n\n".encode(),
                "more_body": True,
            }
        )
        if tool == "reset":
            raise ConnectionResetError("soak: dropping the stream mid-way")  # uvicorn closes the socket
        event = b"data: " + _answer(request_id, text) + b"\n\n"
        if tool == "drip":
            delay = random.choice([0.005, 0.02])  # ~0.8 s or ~3 s for the whole event: some time out
            for byte in event:
                await send({"type": "http.response.body", "body": bytes([byte]), "more_body": True})
                await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.body", "body": event})
    else:
        await _start(send, 200, b"application/json")
        await send({"type": "http.response.body", "body": _answer(request_id, text)})


@contextlib.contextmanager
def upstream_server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        faulty_upstream,
        host="127.0.0.1",
        port=port,
        log_level="critical",
        loop="uvloop",
        http="httptools",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- mcpfence as a child, reporting its own task count -----------------------------------


def serve_child(config_path: str, stats_path: str, interval: float) -> None:
    """The child: ``mcpfence serve`` plus a sampler writing the event loop's task count."""
    from mcpfence.config import load_config
    from mcpfence.server import serve

    async def sample() -> None:
        while True:
            tasks = len(asyncio.all_tasks())
            with open(stats_path, "a") as out:
                out.write(json.dumps({"time": time.time(), "tasks": tasks}) + "\n")
            await asyncio.sleep(interval)

    def on_ready() -> None:
        asyncio.get_running_loop().create_task(sample())

    serve(load_config(Path(config_path)), on_ready=on_ready)


# -- resources from /proc --------------------------------------------------------------


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def connections(pid: int, proxy_port: int, upstream_port: int) -> tuple[int, int]:
    """Established TCP connections of ``pid``: (from clients, to the upstream)."""
    inodes = _socket_inodes(pid)
    clients = upstreams = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] not in inodes or fields[3] != "01":  # 01: ESTABLISHED
                    continue
                local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
                clients += local == proxy_port
                upstreams += remote == upstream_port
    return clients, upstreams


@dataclass
class Sample:
    elapsed: float
    rss_mib: float
    fds: int
    client_conns: int
    upstream_conns: int
    tasks: int
    calls: int
    failures: int


# -- the clients -----------------------------------------------------------------------


@dataclass
class Traffic:
    url: str
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def calls(self) -> int:
        return sum(self.outcomes.values())

    async def call(
        self, http: aiohttp.ClientSession, tool: str, text: str, headers: dict[str, str] | None = None
    ) -> None:
        await self._send(http, tool, self._call_body(tool, text), headers)

    def _call_body(self, tool: str, text: str) -> dict[str, Any]:
        params = {"name": tool, "arguments": {"text": text}}
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": "tools/call", "params": params}

    async def _send(
        self, http: aiohttp.ClientSession, kind: str, body: Any, headers: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse | None:
        try:
            async with http.post(self.url, json=body, headers=headers) as response:
                answer = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures[f"{kind}:{type(exc).__name__}"] += 1
            self.outcomes[f"{kind}:{type(exc).__name__}"] += 1
            return None
        outcome = f"{kind}:{response.status}"
        self.outcomes[outcome] += 1
        if response.status == 500:
            self.failures[outcome] += 1
        if kind == "deny" and b'"isError":true' not in answer.replace(b" ", b""):
            self.failures["deny:not-enforced"] += 1  # the last good policy set must stay in force
        return response

    async def session(self, http: aiohttp.ClientSession) -> None:
        """A whole session: handshake, calls, a server stream dropped mid-way, DELETE."""
        init = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "soak", "version": "0"},
            },
        }
        response = await self._send(http, "session-init", init)
        session_id = response.headers.get("mcp-session-id") if response is not None else None
        headers = {"mcp-session-id": session_id} if session_id else {}
        await self._send(
            http, "session-initialized", {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers
        )
        for _ in range(3):
            await self.call(http, random.choice(["echo", "stream"]), "in a session", headers)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(
                self.url,
                headers={**headers, "accept": "text/event-stream"},
                timeout=aiohttp.ClientTimeout(total=0.5),
            ) as stream:
                await stream.content.read(1)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.delete(self.url, headers=headers) as closed:
                await closed.read()

    async def one(self, http: aiohttp.ClientSession) -> None:
        kind = random.choices(list(BEHAVIOURS), weights=list(BEHAVIOURS.values()))[0]
        if kind == "session":
            await self.session(http)
        elif kind == "deny":
            await self._send(http, "deny", self._call_body("echo", "this is forbidden"))
        else:
            await self.call(http, kind, "Soak Text")


async def clients(traffic: Traffic, workers: int, stop: asyncio.Event) -> None:
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:

        async def worker() -> None:
            while not stop.is_set():
                await traffic.one(http)

        await asyncio.gather(*(worker() for _ in range(workers)))


async def reloads(policy_file: Path, every: float, stop: asyncio.Event, log: list[str]) -> None:
    """Break the policy file, then restore it: mcpfence must keep the last good set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
            return
        policy_file.write_text(BROKEN_POLICIES)
        log.append(f"{time.strftime('%H:%M:%S')} broken policy file written")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every / 4)
        policy_file.write_text(POLICIES)
        log.append(f"{time.strftime('%H:%M:%S')} good policy file restored")


async def sampler(
    pid: int,
    ports: tuple[int, int],
    stats: Path,
    traffic: Traffic,
    every: float,
    stop: asyncio.Event,
    samples: list[Sample],
    started: float,
) -> None:
    while not stop.is_set():
        lines = stats.read_text().splitlines() if stats.exists() else []
        tasks = json.loads(lines[-1])["tasks"] if lines else -1
        clients_n, upstreams_n = connections(pid, *ports)
        sample = Sample(
            time.monotonic() - started,
            rss_kib(pid) / 1024,
            len(os.listdir(f"/proc/{pid}/fd")),
            clients_n,
            upstreams_n,
            tasks,
            traffic.calls,
            sum(traffic.failures.values()),
        )
        samples.append(sample)
        print(row(sample), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


HEADER = (
    "| minute | RSS MiB | open fds | client conns | upstream conns | tasks | calls | failures |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(s: Sample) -> str:
    return (
        f"| {s.elapsed / 60:.1f} | {s.rss_mib:.1f} | {s.fds} | {s.client_conns} | {s.upstream_conns} "
        f"| {s.tasks} | {s.calls:,} | {s.failures} |"
    )


def report(
    samples: list[Sample],
    traffic: Traffic,
    reload_log: list[str],
    minutes: float,
    workers: int,
    at_start: str,
) -> str:
    """Markdown: ``at_start`` (the conditions), the series, and last-quarter means against
    the first quarter after warm-up."""
    warm = [s for s in samples if s.elapsed >= 60] or samples
    quarter = max(1, len(warm) // 4)
    first, last = warm[:quarter], warm[-quarter:]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    def compare(name: str, attribute: str) -> str:
        before = mean([getattr(s, attribute) for s in first])
        after = mean([getattr(s, attribute) for s in last])
        return f"| {name} | {before:.1f} | {after:.1f} | {after - before:+.1f} |"

    outcomes = ", ".join(f"{kind} {count:,}" for kind, count in sorted(traffic.outcomes.items()))
    failures = ", ".join(f"{kind} {count:,}" for kind, count in sorted(traffic.failures.items())) or "none"
    return "\n".join(
        [
            f"Soak: {minutes:g} minutes, {workers} client workers; {at_start}",
            "",
            HEADER,
            *[row(s) for s in samples],
            "",
            "First quarter after the first minute against the last quarter (means):",
            "",
            "| resource | first | last | change |",
            "|---|---:|---:|---:|",
            compare("RSS MiB", "rss_mib"),
            compare("open fds", "fds"),
            compare("client connections", "client_conns"),
            compare("upstream connections", "upstream_conns"),
            compare("asyncio tasks", "tasks"),
            "",
            f"Answers by kind and HTTP status: {outcomes}.",
            "",
            f"Failures (500s, resets or hangs past {CLIENT_TIMEOUT:g} s): {failures}.",
            "",
            f"Policy reloads: {len(reload_log) // 2} broken files written and restored.",
            "",
        ]
    )


async def soak(args: argparse.Namespace, directory: Path) -> str:
    policy_file = directory / "policies.yaml"
    policy_file.write_text(POLICIES)
    stats = directory / "stats.jsonl"
    with upstream_server() as upstream_port:
        port = free_port()
        config = {
            "server": {"host": "127.0.0.1", "port": port, "admin_port": free_port()},
            "policies": [str(policy_file)],
            "decision_log": {"path": "decisions.jsonl", "max_bytes": 5_000_000, "backups": 2},
            "storage": {"path": "mcpfence.db"},
            "routes": [
                {
                    "name": "soak",
                    "path": ROUTE,
                    "upstream": {
                        "url": f"http://127.0.0.1:{upstream_port}/mcp",
                        "timeout_seconds": TIMEOUT_SECONDS,
                    },
                }
            ],
        }
        config_path = directory / "mcpfence.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        command = [
            sys.executable,
            "-m",
            "benchmarks.soak",
            "--serve",
            str(config_path),
            str(stats),
            str(args.sample_every),
        ]
        with open(directory / "mcpfence.log", "wb") as log:
            child = await asyncio.create_subprocess_exec(*command, cwd=REPO, stdout=log, stderr=log)
            try:
                await asyncio.to_thread(wait_for_port, port)
                traffic = Traffic(f"http://127.0.0.1:{port}{ROUTE}")
                stop = asyncio.Event()
                samples: list[Sample] = []
                reload_log: list[str] = []
                started, at_start = time.monotonic(), conditions()
                print(HEADER, flush=True)
                tasks = [
                    asyncio.create_task(clients(traffic, args.workers, stop)),
                    asyncio.create_task(reloads(policy_file, args.reload_every, stop, reload_log)),
                    asyncio.create_task(
                        sampler(
                            child.pid,
                            (port, upstream_port),
                            stats,
                            traffic,
                            args.sample_every,
                            stop,
                            samples,
                            started,
                        )
                    ),
                ]
                await asyncio.sleep(args.minutes * 60)
                stop.set()
                await asyncio.gather(*tasks)
            finally:
                child.terminate()
                await child.wait()
    return report(samples, traffic, reload_log, args.minutes, args.workers, at_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent client workers (default 8)")
    parser.add_argument(
        "--sample-every", type=float, default=30.0, help="seconds between samples (default 30)"
    )
    parser.add_argument(
        "--reload-every", type=float, default=60.0, help="seconds between broken-policy reloads (default 60)"
    )
    parser.add_argument("--serve", nargs=3, metavar=("CONFIG", "STATS", "INTERVAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve[0], args.serve[1], float(args.serve[2]))
        return
    with tempfile.TemporaryDirectory(prefix="mcpfence-soak-") as directory:
        text = asyncio.run(soak(args, Path(directory)))
    print(text)
    print(f"written to {write_result('soak.md', text)}")


if __name__ == "__main__":
    main()

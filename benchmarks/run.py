"""One benchmark run: direct, nginx, the bare forwarder and mcpfence, side by side.

Every target fronts the same fast upstream and gets the same ``tools/call``: c=16 throughput
and c=1 latency with wrk, then a memory soak of mcpfence (with the policy pack) over
100,000 calls. ``mcpfence-policies-traced`` is the policy target again with tracing on,
exporting OTLP/HTTP to ``otlp_sink.py``, so the cost of tracing is read off one table.
Prints a Markdown table and writes it to ``results/latest.md``.

Run: ``python -m benchmarks.run [--duration S] [--only TARGET,...] [--skip-nginx]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from urllib.parse import urlsplit

import aiohttp
import yaml

from benchmarks.bench_policy import others
from benchmarks.harness import (
    BENCH_DIR,
    BODY,
    HEADERS,
    PING_BODY,
    SSE_BODY,
    UNMATCHED_BODY,
    Measurement,
    Service,
    bare_forwarder,
    conditions,
    fast_upstream,
    free_port,
    loaded,
    markdown_table,
    measure_all,
    preflight,
    python_module,
    rss_kib,
    run_wrk,
    service,
    write_result,
)
from mcpfence.policy import load_policy_set

TARGETS = ["direct", "nginx", "bare-forwarder", "fastmcp-proxy", "mcpfence", "mcpfence-policies",
           "mcpfence-policies-traced", "mcpfence-policies-10k", "middleware-policies", "soak"]
ROUTE_PATH = "/bench/mcp"
SOAK_CONNECTIONS = 16
SOAK_SAMPLES = 10
POLICIES = "mcpfence-policies"  # the row the performance targets are about
MANY_POLICIES = 10_000


@contextmanager
def nginx(upstream_port: int) -> Iterator[Service]:
    """nginx with a keepalive upstream, under a throwaway prefix."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as prefix:
        template = (BENCH_DIR / "nginx.conf.tmpl").read_text()
        config = Path(prefix, "nginx.conf")
        config.write_text(template.replace("@PREFIX@", prefix)
                          .replace("@LISTEN_PORT@", str(port))
                          .replace("@UPSTREAM_PORT@", str(upstream_port)))
        command = ["nginx", "-p", prefix, "-c", str(config), "-e", "stderr",
                   "-g", "daemon off;"]
        with service(command, port) as served:
            yield served


def fastmcp_proxy(upstream: str) -> AbstractContextManager[Service]:
    """FastMCP's ``create_proxy`` in front of the ``upstream`` URL (``fastmcp_proxy.py``)."""
    port = free_port()
    command = python_module("benchmarks.fastmcp_proxy", "--port", str(port), "--upstream", upstream)
    return service(command, port)


def many_policies(directory: str) -> tuple[str, float]:
    """A file of ``MANY_POLICIES`` policies for other tools, and the CPU seconds loading it
    takes (CPU, not wall-clock: on a shared machine wall-clock counts others' work too)."""
    path = Path(directory, "many.yaml")
    path.write_text(yaml.dump_all(others(MANY_POLICIES), Dumper=yaml.CSafeDumper))
    started = time.process_time()
    load_policy_set([path])
    return str(path), time.process_time() - started


def otlp_sink() -> AbstractContextManager[Service]:
    """Run ``otlp_sink.py`` on a free port; its URL is the OTLP endpoint (no path)."""
    port = free_port()
    return service(python_module("benchmarks.otlp_sink", "--port", str(port)), port, path="")


def tracing_to(endpoint: str) -> dict[str, str]:
    """The environment that turns mcpfence's tracing on, exporting OTLP/HTTP to ``endpoint``."""
    return {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


@contextmanager
def mcpfence(upstream: str, policies: list[str], env: dict[str, str] | None = None,
             ) -> Iterator[Service]:
    """``mcpfence serve`` with one route, ``bench``, to the ``upstream`` URL."""
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "policies": policies,
        "routes": [{"name": "bench", "path": ROUTE_PATH, "upstream": {"url": upstream}}],
    }
    with tempfile.TemporaryDirectory(prefix="bench-mcpfence-") as directory:
        path = Path(directory, "mcpfence.yaml")
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        command = python_module("mcpfence", "serve", "--config", str(path))
        with service(command, port, ROUTE_PATH, env) as served:
            yield served


async def _call_many(url: str, calls: int, on_progress: Callable[[int], None]) -> None:
    """Send ``calls`` benchmark calls over ``SOAK_CONNECTIONS`` connections; all must be 200."""
    sent = 0
    step = max(1, calls // SOAK_SAMPLES)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while sent < calls:
            sent += 1
            if sent % step == 0 and sent < calls:
                on_progress(sent)
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"soak call {sent} got HTTP {response.status}")

    connector = aiohttp.TCPConnector(limit=SOAK_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(SOAK_CONNECTIONS)))


def soak(url: str, pid: int, calls: int) -> str:
    """RSS of the proxy before and after ``calls`` calls (after a warm-up), as Markdown."""
    asyncio.run(_call_many(url, max(calls // 100, SOAK_SAMPLES), lambda _: None))
    samples = [(0, rss_kib(pid))]
    asyncio.run(_call_many(url, calls, lambda sent: samples.append((sent, rss_kib(pid)))))
    samples.append((calls, rss_kib(pid)))
    before, after = samples[0][1], samples[-1][1]
    series = ", ".join(f"{sent:,}: {rss / 1024:.1f}" for sent, rss in samples)
    return (f"Memory soak (mcpfence with policies, {calls:,} tools/call at c={SOAK_CONNECTIONS}, "
            f"after a warm-up): RSS {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB "
            f"after ({after - before:+,} KiB).\n\nRSS in MiB by calls sent: "
            f"{series}.\n")


@dataclass
class Extras:
    """Measurements beside the main table that the targets need."""

    unmatched_cpu_us: float | None = None
    ping_cpu_us: float | None = None
    sse_added_p50_us: float | None = None
    load_seconds: float | None = None
    many_rss_mib: float | None = None


def unmatched_and_ping(proxy: Service, seconds: float, rounds: int = 3) -> tuple[float, float]:
    """CPU µs per request of a tools/call no policy matches and of a ping, interleaved."""
    preflight(proxy.url, UNMATCHED_BODY)
    unmatched, ping = [], []
    for _ in range(rounds):
        unmatched.append(loaded(proxy, seconds / rounds, UNMATCHED_BODY)[1])
        ping.append(loaded(proxy, seconds / rounds, PING_BODY)[1])
    return median(unmatched), median(ping)


def sse_added_p50(direct: Service, proxy: Service, seconds: float, rounds: int = 3) -> float:
    """Added p50 at c=1 of a one-event SSE answer: the time to the first relayed event."""
    preflight(direct.url, SSE_BODY)
    preflight(proxy.url, SSE_BODY)
    added = []
    for _ in range(rounds):
        base = run_wrk(direct.url, connections=1, seconds=seconds / rounds, body=SSE_BODY).p50_us
        added.append(run_wrk(proxy.url, connections=1, seconds=seconds / rounds, body=SSE_BODY).p50_us - base)
    return median(added)


def verdicts(rows: list[Measurement], extras: Extras) -> str:
    """The performance targets as pass/fail, from this run's rows (ratios, never absolute req/s)."""
    by = {row.target: row for row in rows}
    checks: list[tuple[str, str, bool]] = []
    fenced, direct = by.get(POLICIES), by.get("direct")
    if fenced is not None and (forwarder := by.get("bare-forwarder")) is not None:
        checks.append(("c=16 throughput with policies ≥ bare forwarder's",
                       f"{fenced.rps:,.0f} vs {forwarder.rps:,.0f} req/s "
                       f"(CPU {fenced.cpu_us:,.0f} vs {forwarder.cpu_us:,.0f} µs/req)",
                       fenced.rps >= forwarder.rps))
    if fenced is not None and (nginx := by.get("nginx")) is not None:
        checks.append(("c=16 throughput with policies ≥ 40 % of nginx's",
                       f"{fenced.rps / nginx.rps:.0%} ({fenced.rps:,.0f} of {nginx.rps:,.0f})",
                       fenced.rps >= 0.4 * nginx.rps))
        limit = 2 * nginx.p99_c16_us + 5000
        checks.append(("p99 at c=16 ≤ 2 x nginx's + 5 ms",
                       f"{fenced.p99_c16_us / 1000:.2f} ms (limit {limit / 1000:.2f} ms)",
                       fenced.p99_c16_us <= limit))
    if fenced is not None and direct is not None:
        added = fenced.p50_us - direct.p50_us
        checks.append(("added p50 at c=1 ≤ 0.25 ms with policies", f"{added / 1000:+.2f} ms",
                       added <= 250))
    if extras.unmatched_cpu_us is not None and extras.ping_cpu_us is not None:
        checks.append(("unmatched tools/call costs no more than a ping (CPU, 5 % noise allowance)",
                       f"{extras.unmatched_cpu_us:,.0f} vs {extras.ping_cpu_us:,.0f} µs/req",
                       extras.unmatched_cpu_us <= 1.05 * extras.ping_cpu_us))
    if extras.load_seconds is not None:
        checks.append((f"{MANY_POLICIES:,} policies load in < 5 s", f"{extras.load_seconds:.2f} s CPU",
                       extras.load_seconds < 5))
    if extras.many_rss_mib is not None:
        checks.append((f"{MANY_POLICIES:,} policies: proxy RSS < 300 MiB", f"{extras.many_rss_mib:.0f} MiB",
                       extras.many_rss_mib < 300))
    if fenced is not None and (many := by.get("mcpfence-policies-10k")) is not None:
        checks.append((f"{MANY_POLICIES:,} policies: per-call cost unchanged (CPU within 5 %)",
                       f"{many.cpu_us:,.0f} vs {fenced.cpu_us:,.0f} µs/req",
                       many.cpu_us <= 1.05 * fenced.cpu_us))
    if extras.sse_added_p50_us is not None:
        checks.append(("SSE: first relayed event ≤ 1 ms over direct (c=1 p50)",
                       f"{extras.sse_added_p50_us / 1000:+.2f} ms", extras.sse_added_p50_us <= 1000))
    if (middleware := by.get("middleware-policies")) is not None and direct is not None:
        checks.append(("in-process middleware (info): vs the same server direct",
                       f"{middleware.rps / direct.rps:.0%} of its req/s, "
                       f"+{middleware.cpu_us - direct.cpu_us:,.0f} µs CPU/req, "
                       f"{(middleware.p50_us - direct.p50_us) / 1000:+.2f} ms p50", True))
    lines = ["| target | measured | met? |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |" for name, value, ok in checks]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark mcpfence against nginx and a "
                                     "bare forwarder.")
    parser.add_argument("--duration", type=float, default=9.0,
                        help="seconds of c=16 per target, split over 3 interleaved rounds "
                        "(c=1 takes half as long); default 9")
    parser.add_argument("--only", type=lambda text: text.split(","), default=TARGETS,
                        help=f"comma-separated subset of: {','.join(TARGETS)}")
    parser.add_argument("--skip-nginx", action="store_true")
    parser.add_argument("--soak-calls", type=int, default=100_000)
    args = parser.parse_args()
    unknown = set(args.only) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    selected = [t for t in TARGETS if t in args.only and not (t == "nginx" and args.skip_nginx)]
    if "nginx" in selected and shutil.which("nginx") is None:
        parser.error("nginx is not installed (apt-get install -y nginx wrk), or use --skip-nginx")

    header = conditions()
    policy_pack = str(BENCH_DIR / "policies.yaml")
    extras = Extras()
    with ExitStack() as stack:
        direct = stack.enter_context(fast_upstream())
        upstream = direct.url
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-policies-"))

        def with_many_policies() -> AbstractContextManager[Service]:
            many, extras.load_seconds = many_policies(scratch)
            return mcpfence(upstream, [policy_pack, many])

        starters: dict[str, Callable[[], AbstractContextManager[Service]]] = {
            "nginx": lambda: nginx(urlsplit(upstream).port or 80),
            "bare-forwarder": lambda: bare_forwarder(upstream),
            "fastmcp-proxy": lambda: fastmcp_proxy(upstream),
            "mcpfence": lambda: mcpfence(upstream, []),
            "mcpfence-policies": lambda: mcpfence(upstream, [policy_pack]),
            "mcpfence-policies-traced": lambda: mcpfence(
                upstream, [policy_pack], tracing_to(stack.enter_context(otlp_sink()).url)),
            "mcpfence-policies-10k": with_many_policies,
            "middleware-policies": lambda: fast_upstream(middleware=policy_pack),
        }
        targets = {"direct": direct} if "direct" in selected else {}
        for target in selected:
            if target in starters:
                targets[target] = stack.enter_context(starters[target]())
        rows = measure_all(targets, args.duration) if targets else []
        if "mcpfence-policies-10k" in targets:
            extras.many_rss_mib = rss_kib(targets["mcpfence-policies-10k"].pid) / 1024
        if POLICIES in targets:
            extras.unmatched_cpu_us, extras.ping_cpu_us = unmatched_and_ping(targets[POLICIES], args.duration)
            extras.sse_added_p50_us = sse_added_p50(direct, targets[POLICIES], args.duration / 2)
    report = f"{header}\n\n{markdown_table(rows) if rows else ''}\n{verdicts(rows, extras)}"
    if "soak" in selected:  # after the table: the soak gets the machine and a fresh proxy
        with fast_upstream() as upstream_service, \
                mcpfence(upstream_service.url, [policy_pack]) as proxy:
            report += "\n" + soak(proxy.url, proxy.pid, args.soak_calls)
    print(report)
    print(f"written to {write_result('latest.md', report)}")


if __name__ == "__main__":
    main()

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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import yaml

from benchmarks.harness import (
    BENCH_DIR,
    BODY,
    HEADERS,
    Service,
    bare_forwarder,
    conditions,
    fast_upstream,
    free_port,
    markdown_table,
    measure_all,
    python_module,
    rss_kib,
    service,
    write_result,
)

TARGETS = ["direct", "nginx", "bare-forwarder", "mcpfence", "mcpfence-policies",
           "mcpfence-policies-traced", "soak"]
ROUTE_PATH = "/bench/mcp"
SOAK_CONNECTIONS = 16
SOAK_SAMPLES = 10


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
    policy_pack = [str(BENCH_DIR / "policies.yaml")]
    with ExitStack() as stack:
        upstream = stack.enter_context(fast_upstream()).url
        starters: dict[str, Callable[[], AbstractContextManager[Service]]] = {
            "nginx": lambda: nginx(urlsplit(upstream).port or 80),
            "bare-forwarder": lambda: bare_forwarder(upstream),
            "mcpfence": lambda: mcpfence(upstream, []),
            "mcpfence-policies": lambda: mcpfence(upstream, policy_pack),
            "mcpfence-policies-traced": lambda: mcpfence(
                upstream, policy_pack, tracing_to(stack.enter_context(otlp_sink()).url)),
        }
        targets = {"direct": upstream} if "direct" in selected else {}
        for target in selected:
            if target in starters:
                targets[target] = stack.enter_context(starters[target]()).url
        table = markdown_table(measure_all(targets, args.duration)) if targets else ""
    report = f"{header}\n\n{table}"
    if "soak" in selected:  # after the table: the soak gets the machine and a fresh proxy
        with fast_upstream() as upstream_service, \
                mcpfence(upstream_service.url, policy_pack) as proxy:
            report += "\n" + soak(proxy.url, proxy.pid, args.soak_calls)
    print(report)
    print(f"written to {write_result('latest.md', report)}")


if __name__ == "__main__":
    main()

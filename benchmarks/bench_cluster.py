"""Cluster throughput in one run: nginx, mcpfence with 1 and 2 workers, 2 replicas behind nginx.

Every mcpfence target runs in cluster mode (a local ``redis-server``) with the benchmark
policies, in front of the same fast upstream; the replicas sit behind ``deploy/nginx.conf``
(round robin). Two more rows give the one worker's route the shared state that costs Redis
round trips per call (docs/how-to/cluster.md#round-trips-per-call): a rate limit plus an
opaque-token policy (one round trip), and a rate limit plus a policy reading the session's
history (one round trip before the call, one write after). Same wrk settings as
``benchmarks.run``: c=16, 2 threads, best of 2 rounds.

Run: ``python -m benchmarks.bench_cluster [--seconds S]``
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from benchmarks.harness import BENCH_DIR, Service, fast_upstream, free_port, python_module, run_wrk, service
from benchmarks.run import ROUTE_PATH, nginx
from tests.cluster.nginx import nginx as cluster_nginx
from tests.cluster.redis_server import redis_server

POLICIES = [str(BENCH_DIR / "policies.yaml"), str(BENCH_DIR / "session_policies.yaml")]
# Never reached by the benchmark, so only its Redis round trip is measured.
UNREACHED_LIMIT = {"requests": 1_000_000_000, "per_seconds": 1, "key": "route"}


@contextmanager
def mcpfence(
    upstream: str, redis_url: str, workers: int, **route: object
) -> Iterator[tuple[Service, int]]:
    """``mcpfence serve --workers N`` in cluster mode, one route to ``upstream`` (``route``:
    its name, which session_policies.yaml matches, and a rate limit)."""
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "policies": POLICIES,
        "cluster": {"redis_url": redis_url},
        "routes": [{"name": "bench", "path": ROUTE_PATH, "upstream": {"url": upstream}, **route}],
    }
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as directory:
        path = Path(directory, "mcpfence.yaml")
        path.write_text(yaml.safe_dump(config))
        command = python_module("mcpfence", "serve", "--config", str(path), "--workers", str(workers))
        with service(command, port, ROUTE_PATH) as served:
            yield served, port


def throughput(url: str, seconds: float) -> float:
    run_wrk(url, connections=16, seconds=1, threads=2)  # warm-up
    rounds = [run_wrk(url, connections=16, seconds=seconds, threads=2) for _ in range(2)]
    return max(r.requests / (r.duration_us / 1e6) for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    seconds = parser.parse_args().seconds
    rows: dict[str, float] = {}
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis = stack.enter_context(redis_server(scratch))
        upstream = stack.enter_context(fast_upstream())
        front = stack.enter_context(nginx(int(urlsplit(upstream.url).port or 0)))
        rows["nginx alone, same upstream"] = throughput(front.url, seconds)
        for workers in (1, 2):
            with mcpfence(upstream.url, redis.url, workers) as (served, _):
                rows[f"mcpfence, `--workers {workers}`"] = throughput(served.url, seconds)
        for name, row in (
            ("tokens", "`--workers 1`, rate limit + opaque-token policy (1 round trip)"),
            ("history", "`--workers 1`, rate limit + history policy (1 round trip + 1 write)"),
        ):
            with mcpfence(upstream.url, redis.url, 1, name=name, rate_limit=UNREACHED_LIMIT) as (served, _):
                rows[f"mcpfence, {row}"] = throughput(served.url, seconds)
        with (
            mcpfence(upstream.url, redis.url, 1) as (_, first),
            mcpfence(upstream.url, redis.url, 1) as (_, second),
        ):
            (scratch / "nginx").mkdir()
            with cluster_nginx([first, second], scratch / "nginx") as url:
                rate = throughput(url + ROUTE_PATH, seconds)
                rows["2 replicas (1 worker each) behind deploy/nginx.conf"] = rate
    print("| target | req/s |\n|---|---:|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:,.0f} |")


if __name__ == "__main__":
    main()

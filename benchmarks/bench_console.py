"""The console's decisions page over a million decision records (numbers, not a test).

Run: ``.venv/bin/python -m benchmarks.bench_console [--records N]``. Writes N records
(default 1,000,000) as a live decision log plus three rotated files, then times what
a page view costs: the first view (which loads every file into DuckDB once), a
filtered page (rows, total, filter menus and the chart) for several filters, and a
view after 1,000 lines were appended. Target: a filtered page under one second.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcpfence.console.decisions import DecisionStore, Filters

POLICIES = [f"policy-{n:02d}" for n in range(20)]
TOOLS = [f"tool_{n:02d}" for n in range(40)]
CLIENTS = [f"client-{n:02d}" for n in range(50)]
START = datetime(2026, 11, 18, tzinfo=UTC)
SPAN = timedelta(days=7)


def line(rng: random.Random, moment: datetime) -> str:
    roll = rng.random()
    decision = "deny" if roll < 0.05 else "mutate" if roll < 0.15 else "audit" if roll < 0.16 else "allow"
    policy = rng.choice(POLICIES)
    violations = [{"policy": policy, "message": f"{policy} says no"}] if decision in ("deny", "audit") else []
    mutations = [{"policy": policy, "path": "/email"}] if decision == "mutate" else []
    return json.dumps({
        "time": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "decision_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "policy_revision": "3b9e" * 16,
        "trace_id": f"{rng.getrandbits(128):032x}",
        "route": rng.choice(("ipost", "postmark")),
        "session_id": f"{rng.getrandbits(64):016x}",
        "client_id": rng.choice(CLIENTS),
        "tool": rng.choice(TOOLS),
        "decision": decision,
        "violations": violations,
        "mutations": mutations,
        "args_sha256": f"{rng.getrandbits(256):064x}",
        "duration_ms": round(rng.uniform(0.2, 3.0), 3),
    }) + "\n"


def write_logs(folder: Path, records: int) -> Path:
    """Records in time order over a week, oldest in decisions.jsonl.3, newest in the live file."""
    rng = random.Random(7)
    log = folder / "decisions.jsonl"
    files = [folder / f"decisions.jsonl.{n}" for n in (3, 2, 1)] + [log]
    per_file = records // len(files)
    step = SPAN / records
    written = 0
    for index, path in enumerate(files):
        count = per_file if index < len(files) - 1 else records - written
        with path.open("w") as out:
            out.writelines(line(rng, START + step * (written + i)) for i in range(count))
        written += count
    return log


def timed(action: Callable[[], object], rounds: int = 5) -> float:
    """Median wall time of ``action`` in milliseconds."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def page_view(store: DecisionStore, filters: Filters, offset: int = 0) -> None:
    """What one /ui/decisions view asks of the store."""
    store.page(filters, 50, offset)
    store.series(filters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        log = write_logs(Path(folder), options.records)
        size = sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20
        took = time.perf_counter() - began
        print(f"wrote {options.records:,} records ({size:,.0f} MiB in 4 files) in {took:.1f} s")
        store = DecisionStore(log)
        try:
            first = timed(lambda: page_view(store, Filters()), rounds=1)
            week_end = START + SPAN
            cases = {
                "no filter": Filters(),
                "decision=deny": Filters(decision="deny"),
                "policy=policy-07, deny, last 7 days": Filters(
                    policy="policy-07", decision="deny", since=week_end - timedelta(days=7)
                ),
                "tool + client, one day": Filters(
                    tool="tool_13", client="client-21", since=week_end - timedelta(days=2),
                    until=week_end - timedelta(days=1),
                ),
            }
            rows = [("first view (loads all files)", first)]
            rows += [(name, timed(lambda f=filters: page_view(store, f))) for name, filters in cases.items()]
            postmark = Filters(route="postmark")
            rows.append(("route=postmark, page 200", timed(lambda: page_view(store, postmark, 50 * 199))))
            rng = random.Random(8)
            with log.open("a") as out:
                out.writelines(line(rng, week_end) for _ in range(1000))
            after = timed(lambda: page_view(store, Filters()), rounds=1)
            rows.append(("view after 1,000 appended lines", after))
            print(f"{'page view':40} {'median ms':>10}")
            for name, ms in rows:
                print(f"{name:40} {ms:10.1f}")
        finally:
            store.close()


if __name__ == "__main__":
    main()

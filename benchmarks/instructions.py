"""Instructions per call, counted by callgrind: exact where CPU time on a shared machine is not.

Runs ``bench_inprocess``'s setup (the middleware with the policy pack around the benchmark
app) under ``valgrind --tool=callgrind`` and counts the instructions of ``--calls`` calls of
each body. Valgrind runs the process ~50x slower, but the counts hardly depend on the
machine's load (they vary by ~1 % between runs: the event loop polls as timing makes it),
so a change of 1 % can be told from noise, which ``bench_inprocess`` at load 2 cannot.
Each count includes a ``callgrind_control`` subprocess spawn spread over the calls.

Run: ``.venv/bin/python -m benchmarks.instructions [--calls N]`` (needs valgrind; ~2 min)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import uvloop

from benchmarks.bench_inprocess import call
from benchmarks.fast_upstream import asgi_app
from benchmarks.harness import BENCH_DIR, BODY, PING_BODY, REPO, UNMATCHED_BODY
from mcpfence import PolicyMiddleware

BODIES = {
    "middleware, 5 policies x 3 expressions": BODY,
    "middleware + pack: tools/call no policy matches": UNMATCHED_BODY,
    "middleware + pack: ping": PING_BODY,
}
_INSIDE = "MCPFENCE_BENCH_UNDER_CALLGRIND"  # set for the run under valgrind
_WARM_UP = 200


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


async def _count(calls: int) -> None:
    """Under valgrind: per body, zero the counters, make the calls, dump the counts."""
    pack = PolicyMiddleware(asgi_app, policies=[BENCH_DIR / "policies.yaml"], route="bench")
    for body in BODIES.values():  # the tool listing, caches, specialized bytecode
        for _ in range(_WARM_UP):
            await call(pack, body)
    for body in BODIES.values():
        _control("--zero")
        for _ in range(calls):
            if await call(pack, body) != 200:
                raise RuntimeError("the call failed")
        _control("--dump")


def _instructions(dump: Path) -> int:
    """The ``summary:`` line of a callgrind dump: instructions executed."""
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise ValueError(f"{dump} has no summary line")


def main() -> None:
    parser = argparse.ArgumentParser(description="Instructions per call, counted by callgrind.")
    parser.add_argument("--calls", type=int, default=1000)
    calls = parser.parse_args().calls
    if os.environ.get(_INSIDE):
        uvloop.run(_count(calls))
        return
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as directory:
        out = Path(directory, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                   "-m", "benchmarks.instructions", "--calls", str(calls)]
        subprocess.run(command, cwd=REPO, env={**os.environ, _INSIDE: "1"}, check=True, capture_output=True)
        # Dumps asked for are numbered from 1, in the order of BODIES.
        counts = {name: _instructions(Path(f"{out}.{n}")) / calls for n, name in enumerate(BODIES, start=1)}
    width = max(map(len, counts))
    for name, count in counts.items():
        print(f"{name.ljust(width)}  {count / 1000:7.1f}k instructions/call")
    unmatched, ping = list(counts.values())[1:]
    print(f"{'unmatched / ping'.ljust(width)}  {unmatched / ping:7.3f}")


if __name__ == "__main__":
    main()

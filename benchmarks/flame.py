"""A py-spy flame graph of mcpfence (with the benchmark policy pack) under wrk at c=16.

Run: ``.venv/bin/python -m benchmarks.flame [--seconds S] [--output docs/images/flame-c16.svg]``
(needs ``py-spy``, ``pip install py-spy``, and permission to attach to a process).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

from benchmarks.harness import BENCH_DIR, fast_upstream, preflight, run_wrk
from benchmarks.run import mcpfence


def main() -> None:
    parser = argparse.ArgumentParser(description="Flame graph of mcpfence at c=16.")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--output", type=Path, default=BENCH_DIR.parent / "docs" / "images" / "flame-c16.svg")
    parser.add_argument("py_spy", nargs="*", help="extra py-spy options, e.g. --format raw")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(__file__).parents[1] / ".venv/bin/py-spy")
    with ExitStack() as stack:
        upstream = stack.enter_context(fast_upstream())
        proxy = stack.enter_context(mcpfence(upstream.url, [str(BENCH_DIR / "policies.yaml")]))
        preflight(proxy.url)
        run_wrk(proxy.url, connections=16, seconds=1, threads=2)  # warm-up
        recorder = subprocess.Popen([spy, "record", "--pid", str(proxy.pid), "--rate", "250",
                                     "--duration", str(args.seconds), "--nonblocking",
                                     "--output", str(args.output), *args.py_spy])
        result = run_wrk(proxy.url, connections=16, seconds=args.seconds, threads=2)
        recorder.wait()
    print(f"{result.rps:,.0f} req/s while recording; flame graph in {args.output}")


if __name__ == "__main__":
    main()

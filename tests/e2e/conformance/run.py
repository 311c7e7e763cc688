"""Run the official MCP conformance suite against our conformance server, direct and proxied.

    python tests/e2e/conformance/run.py [--proxy] [--cluster] [--results DIR] [--upstream URL]

The suite (npm ``@modelcontextprotocol/conformance``, pinned with Node 22 in this folder's
package.json; install with ``npm ci --prefix tests/e2e/conformance``) runs in server mode, once per
protocol revision it knows, against ``server.py`` directly and with ``--proxy`` also through
``mcpfence serve`` (one route ``/conf/mcp``, no policies). A proxy with no policies must be
invisible: the run fails when the proxied score is lower than the direct one and prints every
check whose verdict differs. Without ``--proxy`` it fails when any scored direct check fails.
``--upstream`` runs against a server already listening there instead of ``server.py`` (for
instance the suite's own TypeScript reference server, as an outside check).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.servers import free_port, run_proxy, wait_for_port  # noqa: E402

NODE_BIN = HERE / "node_modules" / ".bin"
SUITE = HERE / "node_modules" / "@modelcontextprotocol" / "conformance"
# Revisions the suite freezes requirements for (``--requirements``: it scores exactly those
# scenarios) and older ones it only filters by (``--spec-version``: every check is scored).
# Each runs at its own wire: initialize handshake through 2025-11-25, stateless 2026-07-28.
REQUIRED_REVISIONS = ("2025-11-25", "2026-07-28")
FILTERED_REVISIONS = ("2025-03-26", "2025-06-18")
REVISIONS = (*FILTERED_REVISIONS, *REQUIRED_REVISIONS)
SUITE_TIMEOUT_SECONDS = 300
ROUTE_PATH = "/conf/mcp"
# Result folders are named server-<scenario>-<ISO timestamp>.
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
# Scored like the suite itself: INFO checks are a log of what happened, not a verdict.
VERDICTS = ("SUCCESS", "FAILURE", "WARNING")


@dataclass(frozen=True)
class Check:
    """One verdict the suite reported, keyed by revision, scenario, id and occurrence."""

    revision: str
    scenario: str
    id: str
    occurrence: int
    status: str
    message: str
    details: Any
    scored: bool

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.revision, self.scenario, self.id, self.occurrence)

    def describe(self) -> str:
        text = self.status + (f" - {self.message}" if self.message else "")
        if self.details:
            text += f"\n      details: {json.dumps(self.details)[:600]}"
        return text


@dataclass(frozen=True)
class Score:
    """The verdicts of one suite run over every revision."""

    checks: tuple[Check, ...]

    def count(self, status: str, revision: str | None = None, scored: bool = True) -> int:
        return sum(
            1
            for check in self.checks
            if check.status == status and check.scored == scored and revision in (None, check.revision)
        )

    def passed(self, revision: str | None = None, scored: bool = True) -> int:
        return self.count("SUCCESS", revision, scored)

    def total(self, revision: str | None = None, scored: bool = True) -> int:
        return self.passed(revision, scored) + self.count("FAILURE", revision, scored)

    def summary(self, revision: str) -> str:
        failed, warnings = self.count("FAILURE", revision), self.count("WARNING", revision)
        return (
            f"{self.passed(revision)}/{self.total(revision)} checks passed "
            f"({failed} failed, {warnings} warnings); not scored: "
            f"{self.passed(revision, scored=False)}/{self.total(revision, scored=False)}"
        )


def scored_scenarios(revision: str) -> frozenset[str] | None:
    """The server scenarios the suite requires for ``revision`` (its frozen requirements file);
    None for a revision without one, where every scenario the suite ran counts."""
    if revision not in REQUIRED_REVISIONS:
        return None
    requirements = yaml.safe_load((SUITE / "requirements" / f"{revision}.yaml").read_text())
    return frozenset(requirements["server"])


def read_checks(results: Path, revision: str, scored: frozenset[str] | None) -> list[Check]:
    """Collect the verdicts from the suite's ``checks.json`` files under ``results``."""
    checks: list[Check] = []
    for folder in sorted(results.iterdir()):
        match = RESULT_DIR.match(folder.name)
        if match is None or not (folder / "checks.json").is_file():
            continue
        scenario = match["scenario"]
        seen: Counter[str] = Counter()
        for raw in json.loads((folder / "checks.json").read_text()):
            if raw.get("status") not in VERDICTS:
                continue
            seen[raw["id"]] += 1
            checks.append(
                Check(
                    revision=revision,
                    scenario=scenario,
                    id=raw["id"],
                    occurrence=seen[raw["id"]],
                    status=raw["status"],
                    message=raw.get("errorMessage") or "",
                    details=raw.get("details"),
                    scored=scored is None or scenario in scored,
                )
            )
    return checks


def differences(direct: Score, proxied: Score) -> list[str]:
    """Every check whose verdict through the proxy is not the direct one, with both sides."""
    before = {check.key: check for check in direct.checks}
    after = {check.key: check for check in proxied.checks}
    lines: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and old.status == new.status:
            continue
        either = old or new
        assert either is not None
        tag = "" if either.scored else " (not scored)"
        lines.append(f"  {key[0]} {key[1]} / {key[2]}{tag}:")
        lines.append(f"    direct:  {old.describe() if old else 'not reported'}")
        lines.append(f"    proxied: {new.describe() if new else 'not reported'}")
    return lines


def run_suite(url: str, out: Path, label: str) -> Score:
    """Run the required scenarios of every revision against ``url``; logs go next to results."""
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    checks: list[Check] = []
    for revision in REVISIONS:
        results = out / label / revision
        results.mkdir(parents=True)
        command = [str(NODE_BIN / "conformance"), "server", "--url", url, "--output-dir", str(results)]
        mode = "--requirements" if revision in REQUIRED_REVISIONS else "--spec-version"
        command += [mode, revision]
        with (out / f"{label}-{revision}.log").open("wb") as log:
            # Its exit status only says whether some scored check failed; the checks say which.
            subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=SUITE_TIMEOUT_SECONDS,
                check=False,
            )
        checks += read_checks(results, revision, scored_scenarios(revision))
    return Score(tuple(checks))


@contextmanager
def conformance_server(url: str | None = None) -> Iterator[str]:
    """Run ``server.py`` on a free port; yields its MCP endpoint (``url`` when one is given)."""
    if url is not None:
        yield url
        return
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def proxy_config(upstream: str) -> dict[str, Any]:
    """One route to the conformance server and no policies: the proxy should be invisible."""
    return {"routes": [{"name": "conf", "path": ROUTE_PATH, "upstream": {"url": upstream}}]}


def run_proxied(upstream: str, out: Path) -> Score | None:
    """The suite through ``mcpfence serve``; None (after saying why) when it will not start."""
    proxy_dir = out / "proxy"
    proxy_dir.mkdir()
    try:
        with run_proxy(proxy_config(upstream), proxy_dir) as proxy:
            try:
                return run_suite(proxy.url(ROUTE_PATH), out, "proxied")
            finally:
                (out / "proxy.log").write_text(proxy.stop())
    except (RuntimeError, TimeoutError) as exc:
        print(f"proxied: mcpfence serve did not start ({exc}):")
        print(startup_output(proxy_dir / "mcpfence.yaml"))
        return None


def run_clustered(upstream: str, out: Path) -> Score:
    """The suite through three cluster-mode replicas behind deploy/nginx.conf's round robin."""
    from tests.cluster.nginx import nginx
    from tests.cluster.redis_server import redis_server
    from tests.cluster.topology import replicas

    for folder in ("redis", "replicas", "nginx"):
        (out / folder).mkdir()
    routes = proxy_config(upstream)["routes"]
    with (
        redis_server(out / "redis") as redis,
        replicas(3, out / "replicas", redis.url, routes) as running,
        nginx([replica.proxy.port for replica in running], out / "nginx") as url,
    ):
        return run_suite(url + ROUTE_PATH, out, "cluster")


def startup_output(config: Path) -> str:
    """What ``mcpfence serve`` says when it will not start (run_proxy keeps that to itself)."""
    command = [sys.executable, "-m", "mcpfence", "serve", "--config", str(config)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    except subprocess.TimeoutExpired:
        return "(it started on a second try)"
    return done.stdout + done.stderr


def report(label: str, score: Score) -> None:
    for revision in REVISIONS:
        print(f"{label:8} {revision}: {score.summary(revision)}")
    for check in score.checks:
        if check.status == "FAILURE" and check.scored:
            print(f"    {check.revision} {check.scenario} / {check.id}: {check.describe()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", action="store_true", help="also run through mcpfence serve")
    parser.add_argument("--cluster", action="store_true", help="also through 3 replicas behind nginx")
    parser.add_argument("--results", type=Path, help="keep checks.json files and logs here")
    parser.add_argument("--upstream", help="test the MCP server at this URL instead of server.py")
    args = parser.parse_args(argv)
    if not (NODE_BIN / "conformance").exists():
        print(f"conformance suite missing: run `npm ci --prefix {HERE}`", file=sys.stderr)
        return 2
    if args.results is not None and args.results.exists() and any(args.results.iterdir()):
        print(f"--results {args.results} is not empty", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        out: Path = args.results or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        with conformance_server(args.upstream) as upstream:
            direct = run_suite(upstream, out, "direct")
            report("direct", direct)
            if not args.proxy:
                return 1 if direct.count("FAILURE") or not direct.total() else 0
            proxied = run_proxied(upstream, out)
            clustered = run_clustered(upstream, out) if args.cluster else None
        if proxied is None:
            return 1
        worse = False
        for label, score in (("proxied", proxied), ("cluster", clustered)):
            if score is None:
                continue
            report(label, score)
            lines = differences(direct, score)
            print(f"differences ({label}): {len(lines) // 3}")
            for line in lines:
                print(line)
            worse = worse or score.passed() < direct.passed()
        return 1 if worse or not direct.total() else 0


if __name__ == "__main__":
    raise SystemExit(main())

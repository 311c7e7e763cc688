"""The wheel carries what ``mcpfence demo`` needs, so the demo runs from an installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # see docs/how-to/test.md

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this tree, unpacked as pip would install it (no checkout around it)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    site = tmp_path_factory.mktemp("site")
    (wheel,) = out.glob("mcpfence-*.whl")
    zipfile.ZipFile(wheel).extractall(site)
    return site


def mcpfence(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "mcpfence", *args],
        cwd=site, env=env, capture_output=True, text=True, timeout=60,
    )


def test_the_wheels_demo_config_and_packs_load(installed: Path) -> None:
    run = mcpfence(installed, "check", "mcpfence/demo_files/examples/demo.yaml")

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("ok: ")


def test_the_wheel_carries_every_demo_upstream(installed: Path) -> None:
    shipped = installed / "mcpfence" / "demo_files" / "examples" / "upstreams"
    source = ROOT / "examples" / "upstreams"

    assert {p.name for p in shipped.glob("*.py")} == {p.name for p in source.glob("*.py")}


def test_without_its_files_the_demo_says_what_is_missing(installed: Path, tmp_path: Path) -> None:
    stripped = tmp_path / "site"
    shutil.copytree(installed, stripped, ignore=shutil.ignore_patterns("demo_files"))

    run = mcpfence(stripped, "demo")

    assert run.returncode == 2
    assert "the demo's files are missing" in run.stderr
    assert "Traceback" not in run.stderr

"""Build step that pyproject.toml cannot express: the demo's files go into the wheel.

``mcpfence demo`` needs ``examples/demo.yaml``, the demo upstreams and the policy
packs. They stay where a reader of the repository looks for them; the build copies
them under ``mcpfence/demo_files/`` (same layout, so demo.yaml's relative paths and
the upstreams' imports hold), and :func:`mcpfence.demo.find_examples` finds them there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DEMO_FILES = (
    "examples/__init__.py",
    "examples/demo.yaml",
    "examples/upstreams/*.py",
    "policies/*.yaml",
)


class BuildWithDemoFiles(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "mcpfence" / "demo_files"
        for pattern in DEMO_FILES:
            for source in ROOT.glob(pattern):
                destination = target / source.relative_to(ROOT)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)


setup(cmdclass={"build_py": BuildWithDemoFiles})

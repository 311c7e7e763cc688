"""Hot reload: poll the policy files and hand over a new set when they change.

Polling size, mtime and the set of files needs no extra dependency and works on
every filesystem (including bind mounts where inotify is silent). The new set is
built completely before ``on_reload`` sees it, so the proxy swaps one reference
and a call is decided by either the old set or the new one, never a mixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from mcpfence.policy.engine import PolicySet
from mcpfence.policy.loader import load_policy_set, policy_files
from mcpfence.yamlsource import SourceError

Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(paths: Sequence[Path]) -> Fingerprint:
    """What identifies the current content of the policy files, cheaply."""
    files, _ = policy_files(paths)
    stamps = []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        stamps.append((str(file), stat.st_mtime_ns, stat.st_size, stat.st_ino))
    return tuple(stamps)


class PolicyWatcher:
    """Reloads ``paths`` when they change; reports each broken state once."""

    def __init__(
        self,
        paths: Sequence[Path],
        on_reload: Callable[[PolicySet], None],
        on_error: Callable[[SourceError], None],
        interval: float = 1.0,
    ) -> None:
        self.paths = list(paths)
        self.on_reload = on_reload
        self.on_error = on_error
        self.interval = interval
        self._seen = fingerprint(self.paths)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.poll()

    async def poll(self) -> bool:
        """Reload if anything changed since the last look; whether a new set was loaded."""
        current = fingerprint(self.paths)
        if current == self._seen:
            return False
        self._seen = current
        try:
            policies = await asyncio.to_thread(load_policy_set, self.paths, allow_empty=False)
        except SourceError as error:
            self.on_error(error)
            return False
        self.on_reload(policies)
        return True

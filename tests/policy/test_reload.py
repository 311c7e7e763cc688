"""Hot reload: changed files are swapped in whole; broken ones keep the last good set."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from mcpfence.policy import PolicySet
from mcpfence.policy_watch import PolicyWatcher
from mcpfence.yamlsource import SourceError
from tests.policy.helpers import policy


class Recorder:
    """Collects what the watcher hands over, as the proxy would."""

    def __init__(self) -> None:
        self.loaded: list[PolicySet] = []
        self.errors: list[SourceError] = []
        self.changed = asyncio.Event()

    def on_reload(self, policies: PolicySet) -> None:
        self.loaded.append(policies)
        self.changed.set()

    def on_error(self, error: SourceError) -> None:
        self.errors.append(error)


def write(path: Path, *names: str) -> None:
    path.write_text(yaml.safe_dump_all([policy(name) for name in names]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "p.yaml", "first")
    return tmp_path


def watcher(folder: Path, recorder: Recorder, interval: float = 1.0) -> PolicyWatcher:
    return PolicyWatcher([folder], recorder.on_reload, recorder.on_error, interval=interval)


@pytest.mark.anyio
async def test_unchanged_files_are_not_reloaded(folder: Path) -> None:
    recorder = Recorder()

    assert await watcher(folder, recorder).poll() is False
    assert recorder.loaded == []


@pytest.mark.anyio
async def test_a_changed_file_is_loaded_and_handed_over(folder: Path) -> None:
    recorder = Recorder()
    watch = watcher(folder, recorder)
    write(folder / "p.yaml", "first", "second")

    assert await watch.poll() is True
    assert [p.name for p in recorder.loaded[0].policies] == ["first", "second"]


@pytest.mark.anyio
async def test_a_new_file_in_a_watched_folder_is_picked_up(folder: Path) -> None:
    recorder = Recorder()
    watch = watcher(folder, recorder)
    write(folder / "q.yaml", "added")

    await watch.poll()

    assert len(recorder.loaded[0]) == 2


@pytest.mark.anyio
async def test_a_broken_file_is_reported_once_and_nothing_is_handed_over(folder: Path) -> None:
    recorder = Recorder()
    watch = watcher(folder, recorder)
    (folder / "p.yaml").write_text("kind: ToolPolicy\nspec: [\n")

    await watch.poll()
    await watch.poll()

    assert recorder.loaded == []
    assert len(recorder.errors) == 1
    assert str(recorder.errors[0]).startswith(f"{folder / 'p.yaml'}:")


@pytest.mark.anyio
async def test_fixing_a_broken_file_reloads(folder: Path) -> None:
    recorder = Recorder()
    watch = watcher(folder, recorder)
    (folder / "p.yaml").write_text("kind: [\n")
    await watch.poll()
    write(folder / "p.yaml", "fixed")

    await watch.poll()

    assert [p.name for p in recorder.loaded[0].policies] == ["fixed"]


@pytest.mark.anyio
async def test_the_running_watcher_polls_by_itself(folder: Path) -> None:
    recorder = Recorder()
    task = asyncio.create_task(watcher(folder, recorder, interval=0.01).run())
    try:
        write(folder / "p.yaml", "first", "second")
        await asyncio.wait_for(recorder.changed.wait(), timeout=10)
    finally:
        task.cancel()

    assert len(recorder.loaded[0]) == 2



@pytest.mark.anyio
@pytest.mark.parametrize("content", ["", "\n", "# comment only\n"])
async def test_an_emptied_file_keeps_the_last_good_set(folder: Path, content: str) -> None:
    """Editors and ``cat >`` truncate a file before writing it: a reload that lands in
    between must not swap in a set without the file's policies."""
    recorder = Recorder()
    watch = watcher(folder, recorder)
    (folder / "p.yaml").write_text(content)

    assert await watch.poll() is False

    assert recorder.loaded == []
    assert "holds no policy document" in str(recorder.errors[0])


@pytest.mark.anyio
async def test_deleting_a_file_removes_its_policies(folder: Path) -> None:
    recorder = Recorder()
    watch = watcher(folder, recorder)
    write(folder / "q.yaml", "other")
    await watch.poll()
    (folder / "p.yaml").unlink()

    assert await watch.poll() is True
    assert [p.name for p in recorder.loaded[-1].policies] == ["other"]

"""The writer's promises under other runs: a live run's staging directory is never taken for a dead one's (by its
lock, not its PID), a run that loses a race says the store already exists, disk-full messages say what was kept
(issue #15, items 14, 15, 17)."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.store import writer as store_writer
from lmfeed.store.format import TokenStore
from lmfeed.store.prepare import prepare


@pytest.fixture
def text(tmp_path) -> Path:
    (tmp_path / "a.txt").write_text("Hello world")
    return tmp_path / "a.txt"


def staging(tmp_path: Path, pid: int) -> Path:
    d = tmp_path / f".out.store.tmp-{pid}-0123abcd"
    (d / "store").mkdir(parents=True)
    (d / "store" / "tokens.npy").write_bytes(b"half-written")
    (d / ".lock").touch()
    return d


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_run_in_another_pid_namespace_keeps_its_staging_directory(text, tmp_path):
    # Its PID means nothing here (another container, another NFS host): here it is a dead process's number.
    live = staging(tmp_path, dead_pid())
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time\n"
                               "f = open(sys.argv[1], 'r+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True); time.sleep(600)", str(live / ".lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        prepare([text], tmp_path / "out.store", workers=1)
        assert (live / "store" / "tokens.npy").read_bytes() == b"half-written"  # untouched
    finally:
        holder.kill()
        holder.wait()
    shutil.rmtree(tmp_path / "out.store")
    prepare([text], tmp_path / "out.store", workers=1)  # now its lock is free: a dead run's, removed
    assert not live.exists()


def test_a_dead_run_is_cleaned_up_even_when_its_pid_is_alive_here(text, tmp_path):
    stale = staging(tmp_path, os.getpid())  # a dead run on another host whose PID happens to be live here
    prepare([text], tmp_path / "out.store", workers=1)
    assert not stale.exists() and TokenStore.open(tmp_path / "out.store").tokens.tolist() == [15496, 995]


def test_a_running_prepare_holds_its_lock(text, tmp_path, monkeypatch):
    seen = []
    finish = store_writer.StoreWriter.finish

    def look(self, metadata):  # noqa: ANN001 - while the run is live, its lock is taken
        run = self.directory.parent
        fd = os.open(run / ".lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        seen.append(run.name)
        return finish(self, metadata)

    monkeypatch.setattr(store_writer.StoreWriter, "finish", look)
    store = prepare([text], tmp_path / "out.store", workers=1)
    assert seen and seen[0].startswith(".out.store.tmp-") and sorted(os.listdir(store.path)) == [
        "doc_starts.npy", "metadata.json", "tokens.npy"]  # the lock file stays behind in the staging directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "out.store"]


def test_the_loser_of_a_race_says_the_store_already_exists(text, tmp_path, monkeypatch):
    winner = prepare([text], tmp_path / "winner.store", workers=1)
    rename = os.rename

    def other_run_publishes_first(src, dst):  # noqa: ANN001 - the other run renames its store in just before us
        if Path(dst).name == "out.store" and not Path(dst).exists():
            shutil.copytree(winner.path, dst)
        return rename(src, dst)

    monkeypatch.setattr(store_writer.os, "rename", other_run_publishes_first)
    with pytest.raises(FileExistsError, match=r"'.*out.store' already exists: another run wrote it while this one "
                                              r"worked") as caught:
        prepare([text], tmp_path / "out.store", workers=1)
    assert ".tmp-" not in str(caught.value)  # not 'Directory not empty: <its own staging directory>'
    assert TokenStore.open(tmp_path / "out.store") and not list(tmp_path.glob(".out.store*"))


@pytest.mark.parametrize("existing", [False, True])
def test_disk_full_says_a_store_was_kept_only_when_there_was_one(text, tmp_path, monkeypatch, existing):
    out = tmp_path / "out.store"
    if existing:
        prepare([text], out, workers=1)

    def full(self, ids, starts):  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_writer.StoreWriter, "write_chunk", full)
    result = CliRunner().invoke(main, ["prepare", str(text), "-o", str(out), "-q", "--workers", "1",
                                       *(["--force"] if existing else [])])
    assert result.exit_code == 1 and result.output.startswith("Error: No space left on the device while writing")
    assert ("is unchanged" in result.output) == existing, result.output
    assert out.exists() == existing and not list(tmp_path.glob(".out.store*"))


def test_disk_full_in_export_names_the_file(text, tmp_path, monkeypatch):
    store = prepare([text], tmp_path / "s.store", workers=1)
    import lmfeed._files as files_module  # export writes through written_whole

    class Full:
        def __init__(self, path, mode, **kwargs):  # noqa: ANN001, ANN003
            self.f = open(path, mode, **kwargs)

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc):  # noqa: ANN002
            self.f.close()

        def write(self, data):  # noqa: ANN001
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module, "open", Full, raising=False)
    result = CliRunner().invoke(main, ["export", str(store.path), "-o", str(tmp_path / "train.bin")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: No space left on the device while writing '{tmp_path / 'train.bin'}'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "s.store"]

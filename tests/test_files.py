"""lmfeed._files.written_whole: the file at the path is the old one or the new one, never a part, never a leftover."""

from __future__ import annotations

import os
import stat

import pytest

from lmfeed._files import written_whole


def test_the_file_appears_whole_with_the_umasks_permissions(tmp_path):
    target = tmp_path / "out.bin"
    with written_whole(target, fsync=True) as f:
        f.write(b"abc")
        assert not target.exists()  # nothing at the path until the rename
        assert [p.name for p in tmp_path.iterdir()][0].startswith(".out.bin.")
    assert target.read_bytes() == b"abc"
    assert list(tmp_path.iterdir()) == [target]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), written_whole(target, "w") as f:
        f.write("new, but only half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with written_whole(target, "w") as f:
        f.write("néw")
    assert target.read_text(encoding="utf-8") == "néw"


def test_only_write_modes_are_taken(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', but got 'a'"), \
            written_whole(tmp_path / "x", "a"):
        pass

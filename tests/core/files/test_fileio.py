"""Atomic writes leave nothing half-written and give files the mode a plain open() would."""

import os
import stat

import pytest

from synthscape.core.files.atomic import atomic_dir, atomic_path, write_text


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_folders_get_the_umask_mode_not_0600(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    written = write_text(tmp_path / "a.txt", "hello")
    with atomic_dir(tmp_path / "folder") as folder:
        (folder / "b.txt").write_text("x")
    assert mode(written) == 0o666 & ~umask
    assert mode(tmp_path / "folder") == 0o777 & ~umask


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "c.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d") as folder:
            (folder / "e").write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []

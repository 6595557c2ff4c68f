"""Atomic writes leave nothing half-written and give files the mode a plain open() would."""

import os
import stat

import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import atomic_dir, atomic_path, new_folder, write_text


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


def test_new_folder_fills_an_empty_folder_and_leaves_it_as_it_was_on_failure(tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # made by the user's shell before the command
    with pytest.raises(RuntimeError):
        with new_folder(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("crash while writing")
    assert out.is_dir() and list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with new_folder(out) as tmp:
        (tmp / "whole.txt").write_text("whole")
    assert [p.name for p in out.iterdir()] == ["whole.txt"]
    with pytest.raises(SynthscapeError, match="already exists and is not empty; pass --overwrite"):
        with new_folder(out):
            pass
    assert [p.name for p in out.iterdir()] == ["whole.txt"]

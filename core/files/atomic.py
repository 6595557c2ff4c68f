"""Atomic writes: a reader never sees half a file, and a crash never leaves one behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from synthscape.core.errors import SynthscapeError
from synthscape.core.files.lock import writer_lock

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # again: some writers (safetensors) make the file anew, 0600
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON, written atomically (config.json, latest.json)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: str | Path, text: str) -> Path:
    """``text`` written atomically: readers see the old file or the new one, never half of it."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """``data`` written atomically (PNG files, encoded once in memory)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder; it becomes ``path`` on success.

    ``path`` must not exist (or be an empty folder), unless ``overwrite``: then the old folder is
    moved aside only once the new one is whole, and removed only once the new one is in its place,
    so a crash or an error at any point leaves the old outputs (or, in the split second between the
    two renames, both: the old one under ``.NAME.*.old``) and never a half-written folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent, [path.name])  # a killed earlier attempt at this very folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    tmp.chmod(0o777 & ~_UMASK)  # mkdtemp makes 0700; give the folder the mode mkdir would
    try:
        yield tmp
        if overwrite and path.is_dir() and any(path.iterdir()):
            _replace_dir(tmp, path)
        else:
            os.rename(tmp, path)  # onto a missing or empty folder; a non-empty one raises
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextlib.contextmanager
def new_folder(path: str | Path, *, overwrite: bool = False, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """A command's output folder, built whole: checked first (``check_new_folder``: nothing of the
    user's is replaced unless ``overwrite``), then filled under a temporary name (``atomic_dir``).

    Enter it before the long work that fills it, so a bad ``--out`` is refused at once; an error
    inside leaves no trace (an empty folder the user made stays), and with ``overwrite`` the old
    folder stays until the new one is whole."""
    check_output_place(Path(path))  # before the lock, whose file goes beside the folder
    with writer_lock(path):  # a second command aimed at the same --out stops here, before it deletes anything
        check_new_folder(Path(path), overwrite=overwrite, inputs=inputs)
        with atomic_dir(path, overwrite=overwrite) as tmp:
            yield tmp


def _replace_dir(new: Path, old: Path) -> None:
    """Swap the complete folder ``new`` in for ``old``, then delete the old one."""
    aside = Path(tempfile.mkdtemp(prefix=f".{old.name}.", suffix=".old", dir=old.parent))
    aside.rmdir()  # a unique free name (Windows renames no folder onto an existing one)
    os.rename(old, aside)
    try:
        os.rename(new, old)
    except OSError:
        os.rename(aside, old)  # put the old outputs back as they were
        raise
    shutil.rmtree(aside)


# what atomic_path and atomic_dir name their temporaries: "." + NAME + "." + mkstemp's 8 characters + suffix
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.(?P<kind>partial|tmp)")


def leftovers(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """The temporaries a killed process left in ``folder`` (of ``names`` only, if given).

    Only ``.NAME.XXXXXXXX.partial`` folders and ``.NAME.XXXXXXXX.tmp`` files match: names this
    module makes up, so nothing of the user's is ever among them."""
    wanted = None if names is None else set(names)
    found = []
    for entry in (sorted(Path(folder).iterdir()) if Path(folder).is_dir() else ()):
        match = _LEFTOVER.fullmatch(entry.name)
        if match is None or (wanted is not None and match["name"] not in wanted) or entry.is_symlink():
            continue
        if entry.is_dir() if match["kind"] == "partial" else entry.is_file():
            found.append(entry)
    return found


def remove_leftovers(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete ``leftovers(folder, names)``. A process still writing the same target at that moment
    loses its temporary and fails at its rename: it never leaves a mix under the final name."""
    found = leftovers(folder, names)
    for entry in found:
        remove_entry(entry)
    return found


def remove_entry(entry: Path) -> None:
    """Delete a file, or a folder with all it holds; a symbolic link goes itself, never its target."""
    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def remove_tree(path: Path) -> None:
    """Delete a folder so that a kill midway leaves a hidden leftover, never half of it under its name."""
    doomed = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    os.rename(path, doomed)
    shutil.rmtree(doomed)


def check_new_folder(path: Path, *, overwrite: bool = False, inputs: Iterable[Path] = ()) -> None:
    """Outputs go to a new (or empty) folder: nothing the user made is overwritten unless asked
    (``--overwrite``), never a folder holding one of the command's ``inputs`` or lying inside one,
    never the current folder (or one holding it), and never through a symbolic link."""
    path = Path(path)
    check_output_place(path)
    if path.exists() and not path.is_dir():
        raise SynthscapeError(f"{path} already exists and is a file, not a folder; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise SynthscapeError(f"{path} already exists and is not empty; pass --overwrite to replace it, "
                              "or choose another --out")
    for source in inputs:
        source_at, out_at = Path(source).resolve(), path.resolve()
        if source_at.is_relative_to(out_at):
            raise SynthscapeError(f"--out {path} holds the input {source}; --overwrite would delete it: "
                                  "choose another --out")
        if out_at.is_relative_to(source_at):
            raise SynthscapeError(f"--out {path} lies inside the input {source}, which must stay as it is: "
                                  "choose a folder outside it")


def check_output_place(path: Path) -> None:
    """Refuse an output that cannot be built beside itself and renamed into place: the current folder
    or one above it (``--out .``: renaming it would pull the ground from under the command), the root,
    or a symbolic link (the link would be replaced by a folder, the folder it named left behind)."""
    path = Path(path)
    if path.is_symlink():
        raise SynthscapeError(f"--out {path} is a symbolic link (to {os.readlink(path)}); give the folder it names "
                              "itself, or a new name")
    where = path.resolve()
    if where == Path(where.anchor) or Path.cwd().resolve().is_relative_to(where):
        raise SynthscapeError(f"--out {path} is the current folder or holds it; name a new folder, e.g. --out "
                              f"{Path(path, 'out')}")

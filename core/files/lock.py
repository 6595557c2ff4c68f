"""One writer per output: a second command aimed at the same folder (or file) stops at once.

Two ``synthscape train --out same`` (or a ``train`` and a ``--resume``, or two ``run`` with one
``--out``) would both pass the emptiness check, then delete each other's temporaries and
checkpoints and interleave ``metrics.csv`` rows. So every writer holds an exclusive ``flock`` on
``.NAME.lock`` beside its target for as long as it writes. The kernel drops the lock when the
process dies, however it dies: a SIGKILL leaves at most the small file, never a stale lock (the
next writer takes it over and removes it when done).

The lock file holds the holder's pid and command line, so the second writer's one-line error can
say who is writing. POSIX only (``fcntl``); elsewhere writing goes unlocked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from synthscape.core.errors import SynthscapeError, shown

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

log = logging.getLogger("synthscape")
_HELD: set[Path] = set()  # the lock files this process holds: taking one again is a no-op, not a refusal


def lock_path(target: str | Path) -> Path:
    """The lock file of ``target``: ``.NAME.lock`` in the same folder (absolute, so ``x`` and
    ``./x/`` share it)."""
    absolute = Path(os.path.abspath(target))
    if not absolute.name:
        raise SynthscapeError(f"--out {target} is the root folder; name a folder to write into")
    return absolute.with_name(f".{absolute.name}.lock")


@contextlib.contextmanager
def writer_lock(target: str | Path) -> Iterator[None]:
    """Hold the exclusive writer lock of ``target`` (a folder or file that need not exist yet).

    A lock held by another process is refused at once, in one line naming it and its holder; one
    this process holds already is simply kept (``train_run`` locks before reading the data, the
    training loop locks again for callers of the library)."""
    lock = lock_path(target)
    if fcntl is None or lock in _HELD:  # no flock here; or this process holds it already (a service, then the loop)
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock, Path(target))
    except PermissionError as exc:  # a read-only parent (``--out .`` of a folder in /): the writing may still work
        log.warning("could not create the writer lock %s (%s); a second writer of %s would not be stopped",
                    lock, exc.strerror, target)
        yield
        return
    _HELD.add(lock)
    try:
        yield
    finally:
        _HELD.discard(lock)
        with contextlib.suppress(OSError):
            lock.unlink()  # while still holding it: a writer that opened this file sees it gone and retries
        os.close(fd)


def _acquire(lock: Path, target: Path) -> int:
    """Open and lock ``lock``; retry when the file was replaced between opening and locking it
    (its previous holder removed it on release, so this file is no longer the one others lock)."""
    for _ in range(50):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise SynthscapeError(f"{target} is being written by another synthscape process ({shown(holder, 160)}); "
                                  "wait for it to finish, or choose another --out") from None
        if _same_file(fd, lock):
            os.ftruncate(fd, 0)
            os.write(fd, _description().encode())
            return fd
        os.close(fd)
    raise SynthscapeError(f"could not take the writer lock {lock}: it keeps being replaced")


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    return text or "holder unknown"


def _description() -> str:
    """Who holds the lock: pid, start time and command line."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    return f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n"

"""Keep freed host memory in the process instead of handing it back to the kernel (glibc malloc).

Why: glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with
fresh pages from the kernel and unmaps them on free. A CPU training step allocates and frees
dozens of activation tensors of tens of MiB (a 64^3 batch of 4 at 8 channels is 32 MiB), so the
kernel zero-fills every page of each one again on first touch: 4.6 ms of page faults for a 32 MiB
tensor whose fill takes 4 ms. With the threshold raised and trimming off, freed blocks are reused:
a 64^3 GAN step goes from 1.85 to 1.42 s on this machine's 2 cores
(``benchmarks/train_scale.py``, the ``malloc`` field). PyTorch's CPU performance guide gets the
same from jemalloc or tcmalloc through ``LD_PRELOAD``; ``mallopt`` does it from inside the
process, with nothing to install. The cost: the process keeps its peak heap until it exits.

The same holds for the simulators' picture-sized arrays: the driving weather effects free and
reallocate about 20 of them per scene, and page faults were half their time. The ``synthscape``
command sets this once per process (and in its ``simulate`` workers), and so does ``train()``;
code that calls the renderers or samplers as a library can call ``keep_freed_memory()`` itself.
Other C libraries (macOS, musl) are left alone; so is a process whose malloc was replaced
(``LD_PRELOAD``), where glibc's settings do not matter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 1 << 30  # tensors under 1 GiB come from the heap and are reused after free
TRIM_THRESHOLD = (1 << 31) - 1  # never shrink the heap (mallopt takes an int)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's malloc to reuse freed tensor memory, once per process; whether it applies."""
    global _applied
    if _applied is None:
        _applied = _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        log.debug("malloc: %s", "freed memory is kept for reuse" if _applied else "left as it is (not glibc)")
    return _applied


def _mallopt(param: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.gnu_get_libc_version and libc.mallopt(param, value))
    except (OSError, AttributeError):  # no C library found, or not glibc
        return False

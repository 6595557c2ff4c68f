import ctypes
import platform

import pytest
import torch

from synthscape.core.allocator import keep_freed_memory

glibc = platform.libc_ver()[0] == "glibc"
mallinfo2 = glibc and hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")  # glibc >= 2.33


class MallInfo2(ctypes.Structure):  # glibc >= 2.33 <malloc.h>
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(not mallinfo2, reason="mallopt and mallinfo2 are glibc's (2.33 and later)")
def test_large_tensors_come_from_the_reused_heap_not_fresh_mappings():
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    assert keep_freed_memory() is True and keep_freed_memory() is True  # once per process; idempotent
    before = libc.mallinfo2()
    x = torch.empty(16 * 2 ** 20)  # 64 MiB: above glibc's default mmap threshold (at most 32 MiB)
    during = libc.mallinfo2()
    assert during.hblkhd - before.hblkhd < 2 ** 20, "a 64 MiB tensor was still given its own mmap"
    assert during.uordblks - before.uordblks >= 64 * 2 ** 20  # it is on the heap
    del x
    after = libc.mallinfo2()
    assert after.arena >= during.arena  # freed, the heap is kept for the next step (no trim)
    assert after.fordblks >= 64 * 2 ** 20

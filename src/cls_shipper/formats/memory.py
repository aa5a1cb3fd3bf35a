"""Allocator settings for processes that encode windows.

Encoding allocates and frees about a megabyte of short-lived objects per LogGroup. With
glibc's defaults the freed memory goes back to the kernel almost at once (heap trimming
above 128 KiB, mmap for blocks above 128 KiB-32 MiB depending on history), so the next group
page-faults it in again: measured here, one page fault per record and twice the CPU time of
the encoding itself. Keeping up to a bounded amount of freed memory in the process removes
that; the process's footprint stays bounded (it is the peak working set, not the window)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 * 1024 * 1024  # blocks below this come from the heap and are reused
TRIM_THRESHOLD = 64 * 1024 * 1024  # free memory kept at the top of the heap before trimming

_done = False
_lock = threading.Lock()


def tune_allocator() -> bool:
    """Apply the settings once per process (later calls do nothing). True when glibc took
    them; False elsewhere (musl, macOS), where encoding simply runs at the default speed."""
    global _done
    with _lock:
        if _done:
            return True
        _done = True
        if not sys.platform.startswith("linux"):
            return False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))

"""The process's memory: what it holds (for /health), and giving freed heap back (glibc)."""

from __future__ import annotations

import ctypes
import os
from typing import Any

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


_LIBC = _libc()


def limit_malloc_arenas() -> None:
    """Two malloc arenas, not one per thread: measured, the server's RSS after a round of
    group-bys grew +45 MiB with 8 threads' arenas each keeping what its scans freed."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, 2)


def release_memory() -> None:
    """Give freed heap back to the system after a request that scanned (glibc only)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def rss_bytes() -> int | None:
    """This process's resident memory, from /proc (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return None

"""Everything that differs between operating systems, in one place.

EdgeTutor is tested on Linux (x86-64); Windows and macOS are meant to work but are untested.
Calls that exist only on POSIX systems live here, each with the fallback used elsewhere, so the
rest of the package imports and runs anywhere. File locks that wait politely are `filelock`'s
(packs/install.py, sync/client.py); `locked()` here is the blocking lock on a file already open,
for the hub's rate-limit tables, taken on every request.
Reads of Linux's /proc and /sys files stay with the code that parses them; each already falls
back when the file is absent.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size so far, in bytes, or None where it cannot be read."""
    if sys.platform == "win32":
        return _windows_peak_working_set()
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux and the BSDs, in bytes on macOS.
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> int | None:
    """This process's resident set size now, in bytes (Linux /proc; elsewhere the peak so far,
    which is what the other systems report cheaply)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def _windows_peak_working_set() -> int | None:
    if sys.platform != "win32":  # keeps type checkers on other systems out of the Windows API
        return None
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        _fields_ = [
            ("cb", wintypes.DWORD),
            ("PageFaultCount", wintypes.DWORD),
            ("PeakWorkingSetSize", ctypes.c_size_t),
            ("WorkingSetSize", ctypes.c_size_t),
            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
            ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
            ("PagefileUsage", ctypes.c_size_t),
            ("PeakPagefileUsage", ctypes.c_size_t),
        ]

    counters = Counters()
    counters.cb = ctypes.sizeof(counters)
    process = ctypes.windll.kernel32.GetCurrentProcess()
    if not ctypes.windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
        return None
    return int(counters.PeakWorkingSetSize)


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity where the system tells, else all of them)."""
    try:
        return sorted(os.sched_getaffinity(0))  # Linux only
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def physical_memory_bytes() -> int | None:
    """Installed memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # POSIX only
    except (ValueError, OSError, AttributeError):
        return None


def fsync_dir(path: Path) -> None:
    """Flush a directory entry, so that a rename into it survives a power cut.

    POSIX needs this after os.replace; Windows cannot open a directory this way and makes
    renames durable itself, so there it does nothing.
    """
    if sys.platform == "win32":
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(fd: int) -> Iterator[None]:
    """Hold an exclusive lock on the open file `fd` against other processes for the block (the
    caller excludes its own threads: a process's threads share the lock)."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

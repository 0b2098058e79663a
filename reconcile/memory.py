"""Telling a job that ran out of memory from one whose model rejects its input, and saying so with the sizes: the
cap the job ran under (reconcile.jobs), what it had reached and what it asked for."""
from __future__ import annotations

import re

from .errors import OutOfMemory
from .validate import memory_text

# How allocation failures read: Python's MemoryError (numpy's _ArrayMemoryError is one), torch's CPU allocator
# (c10/core/impl/alloc_cpu.cpp: "DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes"),
# C++'s std::bad_alloc, TensorFlow's ResourceExhaustedError ("OOM when allocating tensor"), mmap's ENOMEM.
_OOM_TEXT = re.compile(r"can't allocate memory|cannot allocate memory|not enough memory|std::bad_alloc|"
                       r"out of memory|OOM when allocating|failed to allocate", re.I)
_TRIED = re.compile(r"tried to allocate (\d+) bytes")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, OutOfMemory)):
        return True
    return isinstance(exc, (RuntimeError, OSError)) and bool(_OOM_TEXT.search(str(exc)))


def _status_kb(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def out_of_memory_text(exc: BaseException, who: str = "") -> str:
    """'<who> ran out of memory: ... cap ...; reached ...': what the job may use, what it had and what it asked
    for (read in the job process that failed)."""
    if isinstance(exc, OutOfMemory):
        return str(exc)
    parts = []
    try:
        import resource

        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
        if cap != resource.RLIM_INFINITY:
            parts.append(f"the job's memory cap is {memory_text(cap)} of address space (--memory sets it)")
    except (ImportError, ValueError, OSError):
        pass
    reached = _status_kb("VmPeak")
    if reached:
        parts.append(f"it reached {memory_text(reached)} (peak resident {memory_text(_status_kb('VmHWM'))})")
    tried = _TRIED.search(str(exc))
    if tried:
        parts.append(f"and asked for {memory_text(int(tried.group(1)))} more")
    return f"{who} ran out of memory: ".lstrip() + ("; ".join(parts[:2]) + (" " + parts[2] if len(parts) > 2 else "")
                                            if parts else type(exc).__name__)

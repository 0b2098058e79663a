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


def status_bytes(field: str) -> int:
    """A size from /proc/self/status ("VmSize", "VmPeak", "VmHWM"), in bytes; 0 where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


# (cap, what the process already held) once this process was capped (reconcile.jobs.cap_memory)
CAPPED: dict[str, int] = {}


def out_of_memory_text(exc: BaseException, who: str = "") -> str:
    """'<who> ran out of memory: ...': the job's cap, what its process held when it started, what it reached and
    what it asked for (read in the job process that failed)."""
    if isinstance(exc, OutOfMemory):
        return str(exc)
    parts = []
    if CAPPED:
        parts.append(f"the job may use {memory_text(CAPPED['cap'])} (--memory) beyond the "
                     f"{memory_text(CAPPED['base'])} its process held at the start")
    reached = status_bytes("VmPeak")
    if reached:
        parts.append(f"it reached {memory_text(reached)} (peak resident {memory_text(status_bytes('VmHWM'))})")
    tried = _TRIED.search(str(exc))
    if tried:
        parts.append(f"and asked for {memory_text(int(tried.group(1)))} more")
    text = "; ".join(parts[:2]) + (" " + parts[2] if len(parts) > 2 else "") if parts else type(exc).__name__
    return f"{who} ran out of memory: ".lstrip() + text

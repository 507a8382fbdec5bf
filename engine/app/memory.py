"""How the engine's long-lived processes treat freed memory (glibc only; elsewhere these do
nothing).

A manipulation allocates and frees several full-size arrays (a 4096x4096 RGBA float32 image
is 256 MB). By default glibc maps every allocation over 32 MB fresh from the kernel and unmaps it
on free, so each new one pays a page fault for every 4 KB it touches. Keeping freed memory in
the heap lets the next job reuse it. Measured on this project's 2-core VM with
`python bench/memory_policy.py` (seven 4096x4096 manipulations in one fresh process,
bench/results/memory_policy.md): from the third run on 1.7-2.0 s each with this policy against
2.2-2.5 s without, for a peak of 1496 MB against 1396 MB; the first run gains less. So only
processes that run many jobs apply it: the worker (which gives the memory back once idle,
`release_freed_memory`) and `simnet batch`; a one-shot `simnet manipulate` does not.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# Free memory at the top of the heap beyond this goes back to the system at once.
KEEP_BYTES = 1 << 30


def _glibc():
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # only glibc has it, and its mallopt codes are the ones above
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap and keep freed memory for reuse. True if applied."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def release_freed_memory() -> None:
    """Return the heap's free pages to the system (after a job, when the process idles)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)

"""engine.app.memory: freed memory kept for reuse, and given back on request (glibc's malloc)."""

import subprocess
import sys

import pytest

from engine.app.memory import _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="not glibc: the policy does nothing here")

# Resident memory (MB) after a 400 MB array is freed, before and after release_freed_memory.
SCRIPT = """
import sys
import numpy as np
from engine.app.memory import keep_freed_memory, release_freed_memory

def resident_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

applied = sys.argv[1] == "keep" and keep_freed_memory()
block = np.ones(100 * 2**20, np.float32)
del block
kept = resident_mb()
release_freed_memory()
print(applied, kept, resident_mb())
"""


def _run(mode):
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", float(out[1]), float(out[2])


def test_freed_memory_is_kept_then_released():
    applied, kept, released = _run("keep")
    assert applied
    assert kept - released > 300  # the freed 400 MB stayed resident until released


def test_by_default_large_blocks_go_back_at_once():
    applied, kept, released = _run("default")
    assert not applied and abs(kept - released) < 50

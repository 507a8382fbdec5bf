"""How many threads the engine's parallel parts use: ONNX Runtime's sessions and the compositor's bands."""

from __future__ import annotations

import os


def thread_count() -> int:
    """Threads for one session: the cores this process may use (SIMNET_THREADS overrides)."""
    if os.environ.get("SIMNET_THREADS", "").isdigit():
        return max(1, int(os.environ["SIMNET_THREADS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)

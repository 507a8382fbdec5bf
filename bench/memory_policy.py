"""The freed-memory policy (engine/app/memory.py): repeated 4096x4096 manipulations in one fresh
process, with and without it.

    python bench/memory_policy.py [--size 4096] [--runs 7]

Each variant runs in its own new process (as a worker starts): the same RGBA exemplar and one
moved region as bench/protocol.py, the default model, the same sample conversions; every run's
seconds are printed, so the first run (heap growth) and the later ones (reuse) show apart, and
the process's peak resident memory: what the speed costs.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(size: int, runs: int, keep: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from bench.protocol import inputs
    from engine import run
    from engine.app.memory import keep_freed_memory
    from engine.edit import Edit
    from engine.io.pixels import to_samples

    applied = keep_freed_memory() if keep else False
    pixels, labels, moved = inputs(size)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = run(np.divide(pixels, np.float32(255), dtype=np.float32), Edit(labels, moved)).pixels
        to_samples(result, "uint8", "rgba")
        seconds.append(time.perf_counter() - start)
    from bench.speed import peak_rss_mb

    print(json.dumps({"applied": applied, "seconds": seconds, "peak_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", choices=["keep", "default"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.size, args.runs, args.child == "keep")
        return
    print(f"{args.size}x{args.size} RGBA, {args.runs} manipulations in one fresh process each\n")
    print("| policy | " + " | ".join(f"run {i + 1}" for i in range(args.runs)) + " | peak RSS |")
    print("|---|" + "---|" * (args.runs + 1))
    for variant in ("default", "keep"):
        out = subprocess.run([sys.executable, __file__, "--size", str(args.size), "--runs", str(args.runs), "--child", variant],
                             capture_output=True, text=True, check=True).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        name = "keep freed memory" if figures["applied"] else "glibc's default" + (" (policy not available here)" if variant == "keep" else "")
        print(f"| {name} | " + " | ".join(f"{s:.2f} s" for s in figures["seconds"]) + f" | {figures['peak_mb']:.0f} MB |")


if __name__ == "__main__":
    main()

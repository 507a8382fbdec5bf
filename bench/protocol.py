"""Protocol overhead: a manipulation through the worker against the same call in-process.

    python bench/protocol.py [--size 4096] [--repeats 5]

Both sides get the same RGBA uint8 exemplar and region maps (one region moved; sent as uint8
ids, as a plug-in does when a map has under 256 regions), and both convert samples the same
way (engine.app.worker's one-pass conversions), so the difference is the cost of the protocol:
framing, moving the buffers both ways, and validation. The worker path runs twice: with large
buffers in shared memory (what the client does where /dev/shm exists) and with everything in
the pipes (the fallback, and the baseline of the same run). Each path runs in its own phase
(alternating them made the worker pay for the other process's memory churn: measured, about
0.6 s), medians after warm-up runs (a fresh worker needs two). Goal: the time outside the
worker's own manipulation under 10% of it at 4096x4096. (The manipulation itself varies by
+-20% from process to process on these VMs, so the round trip against in-process says less
than the time outside the manipulation, which the worker measures on itself.)
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import run  # noqa: E402
from engine.app.memory import keep_freed_memory  # noqa: E402
from engine.edit import Edit  # noqa: E402
from engine.io.pixels import to_samples  # noqa: E402
from engine.link.client import Client, Image, labels_buffer, worker_command  # noqa: E402

WORKER_WARMUP = 2


def inputs(size: int):
    rng = np.random.default_rng(0)
    pixels = (rng.random((size, size, 4), dtype=np.float32) * 255).astype(np.uint8)
    labels = np.zeros((size, size), np.int32)
    labels[size // 8 : size // 2, size // 8 : size // 2] = 1
    moved = np.zeros_like(labels)
    moved[size // 3 : size * 3 // 4, size // 3 : size * 3 // 4] = 1
    return pixels, labels, moved


def through_worker(shared: bool, pixels, labels, moved, repeats: int) -> dict:
    """Round trips through one worker: medians of the whole call and of the worker's own
    manipulation, and the last result's bytes."""
    size = pixels.shape[0]
    client = Client(worker_command(), shared_memory=shared)
    image = Image(pixels.tobytes(), size, size, 4)
    maps = dict(exemplar_regions=labels_buffer(labels.astype(np.uint8).tobytes(), size, size, "uint8"),
                target_regions=labels_buffer(moved.astype(np.uint8).tobytes(), size, size, "uint8"))
    total, inside = [], []
    try:
        used_shared = client.hello()["shared_memory"] and client._shared is not None
        for attempt in range(repeats + WORKER_WARMUP):
            start = time.perf_counter()
            result = client.manipulate(image, **maps)
            end = time.perf_counter()
            if attempt >= WORKER_WARMUP:
                total.append(end - start)
                inside.append(client.last_seconds)
        data = bytes(result.data)
    finally:
        client.close()
    outside = np.array(total) - np.array(inside)
    return {"total": float(np.median(total)), "inside": float(np.median(inside)), "outside": float(np.median(outside)),
            "shared": used_shared, "bytes": data}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    keep_freed_memory()  # the in-process path gets the worker's memory policy (engine.app.memory)
    pixels, labels, moved = inputs(args.size)
    size = args.size

    def in_process():
        result = run(np.divide(pixels, np.float32(255), dtype=np.float32), Edit(labels, moved)).pixels
        return to_samples(result, "uint8", "rgba").tobytes()

    shared = through_worker(True, pixels, labels, moved, args.repeats)
    piped = through_worker(False, pixels, labels, moved, args.repeats)
    direct, conversions = [], []
    for attempt in range(args.repeats + 1):
        start = time.perf_counter()
        expected = in_process()
        if attempt:
            direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        to_samples(np.divide(pixels, np.float32(255), dtype=np.float32), "uint8", "rgba")
        if attempt:
            conversions.append(time.perf_counter() - start)
    direct_s, conversion_s = float(np.median(direct)), float(np.median(conversions))
    megabytes = (pixels.nbytes * 2 + labels.size * 2) / 1e6
    print(f"{size}x{size} RGBA uint8, {megabytes:.0f} MB each way and back, median of {args.repeats} runs per path")
    print()
    print("| path | round trip s | worker's own manipulation s | outside it s (share of it) | vs in-process |")
    print("|---|---|---|---|---|")
    print(f"| in-process engine (same conversions) | {direct_s:.3f} | | | |")
    for name, figures in (("worker, shared memory", shared), ("worker, pipes only", piped)):
        if name.endswith("memory") and not figures["shared"]:
            name += " (not available here: pipes)"
        print(f"| {name} | {figures['total']:.3f} | {figures['inside']:.3f} | "
              f"{figures['outside']:.3f} ({figures['outside'] / figures['inside']:.1%}) | "
              f"{figures['total'] - direct_s:+.3f} ({(figures['total'] - direct_s) / direct_s:+.1%}) |")
    print()
    own = shared["outside"] - conversion_s
    print(f"the sample conversions (uint8 -> float32 and back, which an in-process caller needs too): {conversion_s:.3f} s; "
          f"the protocol's own cost with shared memory, outside minus those: {own:.3f} s ({own / shared['inside']:.1%})")
    print(f"identical results: {shared['bytes'] == expected and piped['bytes'] == expected}")
    print(f"shared memory cuts the time outside the manipulation by {piped['outside'] / max(shared['outside'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()

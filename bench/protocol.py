"""Protocol overhead: a manipulation through the worker against the same call in-process.

    python bench/protocol.py [--size 4096] [--repeats 3]

Both sides get the same RGBA uint8 exemplar and region maps (one region moved; sent as uint8
ids, as a plug-in does when a map has under 256 regions). The in-process
figure includes the uint8 <-> float conversions the worker also does, so the difference is the
cost of the protocol: framing, the pipe in both directions, and validation. Each path runs in
its own phase (alternating them made the worker pay for the other process's memory churn:
measured, about 0.6 s), medians after warm-up runs (a fresh worker needs two). The worker path
is also split at its first and last progress message: the request phase (send, read, validate)
and the reply phase (encode, receive). Goal: under 10% of the manipulation time at 4096x4096.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import run  # noqa: E402
from engine.client import Client, Image, labels_buffer, worker_command  # noqa: E402

WORKER_WARMUP = 2


def inputs(size: int):
    rng = np.random.default_rng(0)
    pixels = (rng.random((size, size, 4), dtype=np.float32) * 255).astype(np.uint8)
    labels = np.zeros((size, size), np.int32)
    labels[size // 8 : size // 2, size // 8 : size // 2] = 1
    moved = np.zeros_like(labels)
    moved[size // 3 : size * 3 // 4, size // 3 : size * 3 // 4] = 1
    return pixels, labels, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pixels, labels, moved = inputs(args.size)
    size = args.size

    def in_process():
        result = run(pixels.astype(np.float32) / np.float32(255), labels, moved).pixels
        return np.clip(result * 255 + 0.5, 0, 255).astype(np.uint8).tobytes()

    client = Client(worker_command())
    image = Image(pixels.tobytes(), size, size, 4)
    maps = dict(exemplar_regions=labels_buffer(labels.astype(np.uint8).tobytes(), size, size, "uint8"),
                target_regions=labels_buffer(moved.astype(np.uint8).tobytes(), size, size, "uint8"))
    worker, request, reply, engine_time, direct = [], [], [], [], []
    try:
        for attempt in range(args.repeats + WORKER_WARMUP):
            marks = []
            start = time.perf_counter()
            result = client.manipulate(image, progress=lambda s, f: marks.append(time.perf_counter()), **maps)
            end = time.perf_counter()
            if attempt >= WORKER_WARMUP:
                worker.append(end - start)
                engine_time.append(client.last_seconds)
                request.append(marks[0] - start)
                reply.append(end - marks[-1])
    finally:
        client.close()
    for attempt in range(args.repeats + 1):
        start = time.perf_counter()
        expected = in_process()
        if attempt:
            direct.append(time.perf_counter() - start)
    same = bytes(result.data) == expected
    direct_s, worker_s = float(np.median(direct)), float(np.median(worker))
    overhead = worker_s - direct_s
    # what the worker spent outside its own manipulation: the protocol's cost proper
    outside = float(np.median(np.array(worker) - np.array(engine_time)))
    inside = float(np.median(engine_time))
    megabytes = (pixels.nbytes * 2 + labels.size * 2) / 1e6
    print(f"{size}x{size} RGBA uint8, {megabytes:.0f} MB over the pipes, median of {args.repeats} runs per path")
    print("| path | seconds |")
    print("|---|---|")
    print(f"| in-process engine | {direct_s:.3f} |")
    print(f"| through the worker | {worker_s:.3f} |")
    print(f"| of which request phase (send, read, validate, until the first progress) | {np.median(request):.3f} |")
    print(f"| of which reply phase (after the last progress) | {np.median(reply):.3f} |")
    print(f"| of which the engine's own manipulation, timed inside the worker | {inside:.3f} |")
    print(f"| time outside the worker's manipulation (pipes, framing, validation, conversions) | {outside:.3f} ({outside / inside:.1%} of it) |")
    print(f"| difference to in-process | {overhead:.3f} ({overhead / direct_s:.1%}) |")
    print(f"identical result: {same}")


if __name__ == "__main__":
    main()

"""Seams in the fill on a smooth gradient: a square moved across a smooth, sky-like picture, the
place it left filled with and without the seam stitching (engine.stitch), and the largest step
between neighbouring pixels over that place against the picture's own.

    python bench/seams.py [--size 384] [--out bench/results/seams.png]

Without stitching means the stitch's solver is given no iterations (the fill as copied, with its
membrane). The sheet shows, 2x: the painting, without, with; below, the same with the local
contrast stretched 8x, where a seam shows as a line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import run, stitch
from engine.edit import from_masks
from engine.io import imageio

HERE = Path(__file__).resolve().parent


def smooth_picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Sums of slow sines per channel (H, W, 3) float32: smooth everywhere, no texture."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / max(height, width) * 96
    channels = []
    for _ in range(3):
        fx, fy, phase = [*rng.uniform(0.02, 0.09, 2).tolist(), rng.uniform(0, 6.28)]
        channels.append(0.5 + 0.25 * np.sin(fx * xs + phase) + 0.25 * np.cos(fy * ys + 0.7 * phase))
    return np.stack(channels, axis=2).astype(np.float32)


def largest_steps(picture: np.ndarray, area: tuple[slice, slice]) -> tuple[float, float]:
    """The largest and 99th-percentile step between vertical or horizontal neighbours in `area`."""
    part = picture[area]
    steps = np.concatenate([np.abs(np.diff(part, axis=0)).max(axis=2).ravel(), np.abs(np.diff(part, axis=1)).max(axis=2).ravel()])
    return float(steps.max()), float(np.percentile(steps, 99))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384, help="long side (the picture is 3:2)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "seams.png")
    args = parser.parse_args(argv)
    width, height = args.size, args.size * 2 // 3
    picture = smooth_picture(height, width)
    side = height * 3 // 8
    y0, x0 = height // 6, width // 12
    source = np.zeros((height, width), np.float32)
    source[y0 : y0 + side, x0 : x0 + side] = 1
    target = np.zeros((height, width), np.float32)
    target[height - side - height // 8 : height - height // 8, width - side - width // 6 : width - width // 6] = 1
    edit = from_masks((height, width), source, target)
    area = (slice(y0 - 4, y0 + side + 4), slice(x0 - 4, x0 + side + 4))
    results = {}
    iterations = stitch.ITERATIONS
    for name, count in (("without stitching", 0), ("with stitching", iterations)):
        stitch.ITERATIONS = count
        try:
            results[name] = run(picture, edit, model="moments").pixels
        finally:
            stitch.ITERATIONS = iterations
    own = largest_steps(picture, area)
    print(f"the painting's own: largest step {own[0]:.4f}, 99th percentile {own[1]:.4f}")
    for name, result in results.items():
        largest, p99 = largest_steps(result, area)
        print(f"{name}: largest step {largest:.4f}, 99th percentile {p99:.4f} over the place the square left")
    crops = [picture[area], *(r[area] for r in results.values())]
    stretched = [np.clip((c - cv2.GaussianBlur(c, (0, 0), 8)) * 8 + 0.5, 0, 1) for c in crops]
    sheet = np.concatenate([np.concatenate(crops, axis=1), np.concatenate(stretched, axis=1)], axis=0)
    sheet = cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    imageio.write_image(args.out, sheet)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

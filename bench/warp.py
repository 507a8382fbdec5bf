"""Which full-resolution warp is fastest on this machine: OpenCV warpAffine (the engine's),
OpenCV remap on a materialised field, or numpy bilinear gathering.

    python bench/warp.py [--sizes 1024 2048 4096] [--repeats 5]

Each method pulls an RGBA float32 image through the same affine motion; the figures are medians
after one warm-up, with each method's time as a ratio to warpAffine, and the largest difference
between the methods' outputs (they must agree).
"""

import argparse
import time

import cv2
import numpy as np

AFFINE = np.array([[0.97, 0.05, 12.3], [-0.04, 1.02, -7.9]])


def warp_affine(image, affine):
    h, w = image.shape[:2]
    return cv2.warpAffine(image, affine, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)


def remap(image, affine):
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = (affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]).astype(np.float32)
    map_y = (affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def numpy_bilinear(image, affine):
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    sx = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    sy = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]

    def reflect(i, n):  # BORDER_REFLECT_101
        period = 2 * n - 2 if n > 1 else 1
        i = np.abs(i.astype(np.int64)) % period
        return np.where(i >= n, period - i, i)

    c0, c1 = reflect(x0, w), reflect(x0 + 1, w)
    r0, r1 = reflect(y0, h), reflect(y0 + 1, h)
    top = image[r0, c0] * (1 - fx) + image[r0, c1] * fx
    bottom = image[r1, c0] * (1 - fx) + image[r1, c1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


METHODS = {"cv2.warpAffine": warp_affine, "cv2.remap": remap, "numpy": numpy_bilinear}


def median_seconds(function, image, repeats):
    function(image, AFFINE)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(image, AFFINE)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads; RGBA float32, median of {args.repeats}")
    print("| size | method | seconds | x warpAffine | max diff |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for size in args.sizes:
        image = rng.random((size, size, 4), dtype=np.float32)
        reference = warp_affine(image, AFFINE)
        base = None
        for name, function in METHODS.items():
            if name == "numpy" and size > 2048:
                print(f"| {size} | {name} | skipped (over 3 GB of temporaries) | | |")
                continue
            seconds = median_seconds(function, image, args.repeats)
            base = base or seconds
            # interior only: OpenCV's 1/32-pixel fixed-point weights differ slightly from float ones
            difference = np.abs(function(image, AFFINE) - reference)[16:-16, 16:-16].max()
            print(f"| {size} | {name} | {seconds:.4f} | {seconds / base:.1f} | {difference:.3f} |")


if __name__ == "__main__":
    main()

"""engine.stitch: the gradient-domain stitching of a shift-map fill, one property per test."""

from __future__ import annotations

import numpy as np

from engine.stitch import stitch


def _ramp(height: int, width: int) -> np.ndarray:
    """A smooth diagonal gradient (H, W, 3) float32, like a sky: 0.004 per pixel at most."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([0.2 + 0.004 * ys, 0.3 + 0.002 * xs, 0.5 + 0.001 * (xs + ys)], axis=2).astype(np.float32)


def _square(height, width, y0, x0, size):
    hole = np.zeros((height, width), bool)
    hole[y0 : y0 + size, x0 : x0 + size] = True
    return hole


def test_an_empty_hole_is_returned_as_it_is():
    image = _ramp(8, 8)
    empty = np.zeros(0, np.int64)
    out = stitch(image, empty, empty, np.zeros((8, 8), np.int32), np.zeros((0, 3), np.float32), empty, empty, image)
    assert out.shape == (0, 3)


def test_an_exact_copy_is_left_exactly_as_it_is():
    rng = np.random.default_rng(0)
    image = rng.random((40, 40, 3)).astype(np.float32)  # brushwork-like noise
    hole = _square(40, 40, 10, 12, 16)
    rows, cols = np.nonzero(hole)
    out = stitch(image, rows, cols, np.zeros((40, 40), np.int32), image[rows, cols], rows, cols, image)
    np.testing.assert_allclose(out, image[rows, cols], atol=1e-5)  # float32 round-off


def test_a_seam_on_a_smooth_gradient_melts_away():
    image = _ramp(64, 64)
    hole = _square(64, 64, 16, 16, 32)
    rows, cols = np.nonzero(hole)
    # the left half is copied from 12 px higher, the right half from 12 px lower: two tone steps
    source_y = np.where(cols < 32, rows - 12, rows + 12)
    copied = image[source_y, cols]
    out = stitch(image, rows, cols, np.zeros((64, 64), np.int32), copied, source_y, cols, image)
    result = image.copy()
    result[rows, cols] = out
    before = image.copy()
    before[rows, cols] = copied
    steps = lambda picture: np.abs(np.diff(picture[12:52, 12:52], axis=1)).max()  # noqa: E731
    assert steps(before) > 0.09  # the copy's seams: 24 px of a 0.004 ramp, and the hole's edges
    assert steps(result) < 0.02  # a few times the ramp's own 0.004 per pixel


def test_copied_brushwork_keeps_its_contrast():
    rng = np.random.default_rng(1)
    image = rng.random((64, 64, 3)).astype(np.float32)
    hole = _square(64, 64, 16, 16, 32)
    rows, cols = np.nonzero(hole)
    # every pixel from an unrelated place: seams everywhere, each hidden by the noise itself
    source_y = rng.integers(0, 64, rows.size)
    source_x = rng.integers(0, 64, rows.size)
    copied = image[source_y, source_x]
    out = stitch(image, rows, cols, np.zeros((64, 64), np.int32), copied, source_y, source_x, image)
    assert out.std() > 0.9 * copied.std()


def test_regions_are_stitched_apart():
    """A hole across two target regions keeps the edge between them as copied."""
    image = np.zeros((32, 32, 3), np.float32)
    labels = np.zeros((32, 32), np.int32)
    labels[:, 16:] = 1
    image[:, 16:] = 1.0
    hole = _square(32, 32, 8, 8, 16)
    rows, cols = np.nonzero(hole)
    copied = image[rows, cols]
    out = stitch(image, rows, cols, labels, copied, rows, cols, image)
    np.testing.assert_allclose(out, copied, atol=1e-5)  # float32 round-off


def test_a_region_no_known_pixel_touches_keeps_its_tone():
    """A hole pixel's region has no known pixel next to it: the system is still solvable and the
    region's copied tone stays (the screening term), only its seams are smoothed."""
    image = _ramp(32, 32)
    labels = np.zeros((32, 32), np.int32)
    hole = _square(32, 32, 8, 8, 16)
    labels[hole] = 2  # a region that exists only inside the hole
    rows, cols = np.nonzero(hole)
    copied = np.full((rows.size, 3), 0.7, np.float32)
    out = stitch(image, rows, cols, labels, copied, rows, cols, image)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.mean(axis=0), 0.7, atol=0.02)

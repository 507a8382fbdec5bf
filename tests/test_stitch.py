"""engine.stitch: the gradient-domain stitching of a shift-map fill, one property per test."""

from __future__ import annotations

import numpy as np

from engine.stitch import image_sampler
from engine.stitch import stitch as stitch_samplers


def stitch(image, rows, cols, labels, colours, source_y, source_x, exemplar):
    """engine.stitch.stitch over whole arrays (the fill's own use)."""
    return stitch_samplers(labels.shape, rows, cols, colours, source_y, source_x, image_sampler(labels),
                           image_sampler(image), image_sampler(exemplar))


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


def test_a_picture_at_half_strength_gives_half_the_result():
    rng = np.random.default_rng(2)
    image = _ramp(48, 48) + 0.05 * rng.random((48, 48, 3)).astype(np.float32)
    hole = _square(48, 48, 12, 12, 24)
    rows, cols = np.nonzero(hole)
    source_y = np.where(cols < 24, rows - 10, rows + 10)
    source_x = cols + rng.integers(-2, 3, rows.size)
    labels = np.zeros((48, 48), np.int32)
    full = stitch(image, rows, cols, labels, image[source_y, source_x], source_y, source_x, image)
    half = stitch(0.5 * image, rows, cols, labels, 0.5 * image[source_y, source_x], source_y, source_x, 0.5 * image)
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-5)


def test_ink_beside_a_transparent_fill_is_not_pulled_into_it():
    """Premultiplied RGBA line art: a black line just left of the hole, the fill's sources
    transparent. Joined by alpha, the hole stays transparent; joined as plain colour, the line
    would be pulled into it."""
    picture = np.zeros((32, 32, 4), np.float32)
    picture[:, 7] = (0.0, 0.0, 0.0, 1.0)
    hole = _square(32, 32, 8, 8, 16)
    rows, cols = np.nonzero(hole)
    source_y, source_x = rows, cols + 8  # transparent paper
    labels = np.zeros((32, 32), np.int32)
    copied = picture[source_y, source_x]
    args = ((32, 32), rows, cols, copied, source_y, source_x, image_sampler(labels), image_sampler(picture),
            image_sampler(picture))
    assert np.abs(stitch_samplers(*args, alpha=3)).max() < 1e-6
    assert stitch_samplers(*args)[:, 3].max() > 0.1

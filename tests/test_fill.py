"""The patch-based fill (engine.fill), on its own."""

import numpy as np

from engine import fill

from .conftest import textured


def _two_bands(height=90, width=120):
    """Top half warm and textured, bottom half cool and textured: a horizon at mid-height."""
    image = textured(height, width) * 0.2
    image[: height // 2] += (0.7, 0.4, 0.1)
    image[height // 2 :] += (0.1, 0.3, 0.7)
    labels = np.zeros((height, width), np.int32)
    labels[height // 2 :] = 1
    return image.astype(np.float32), labels


def test_an_empty_hole_fills_nothing():
    image, labels = _two_bands()
    result = fill.fill_vacated(image, np.zeros(labels.shape, bool), labels, image, labels)
    assert result.rows.size == 0 and result.colours.shape == (0, 3)


def test_a_hole_across_a_horizon_continues_both_sides():
    image, labels = _two_bands()
    hole = np.zeros(labels.shape, bool)
    hole[25:65, 40:80] = True
    damaged = image.copy()
    damaged[hole] = 0.0  # what was there must not matter
    result = fill.fill_vacated(damaged, hole, labels, image, labels)
    out = damaged.copy()
    out[result.rows, result.cols] = result.colours
    assert np.array_equal(labels[result.source_y, result.source_x], labels[result.rows, result.cols])
    top, bottom = out[25:45, 40:80], out[45:65, 40:80]
    assert top[..., 0].mean() > 0.6 and top[..., 2].mean() < 0.3  # warm above the horizon
    assert bottom[..., 2].mean() > 0.6 and bottom[..., 0].mean() < 0.3  # cool below it


def test_sources_keep_inside_their_region_and_off_its_rim():
    image, labels = _two_bands()
    hole = np.zeros(labels.shape, bool)
    hole[10:30, 10:110] = True  # all of it in region 0
    result = fill.fill_vacated(image, hole, labels, image, labels)
    assert (result.source_y < labels.shape[0] // 2 - fill.SOURCE_RIM).all()


def test_filled_pixels_copy_the_exemplar_where_offsets_agree():
    """The shift map copies native pixels: most filled colours are some exemplar pixel exactly."""
    image, labels = _two_bands(180, 240)
    hole = np.zeros(labels.shape, bool)
    hole[20:70, 60:160] = True
    damaged = image.copy()
    damaged[hole] = 0.5
    result = fill.fill_vacated(damaged, hole, labels, image, labels)
    exact = np.all(np.isclose(result.colours, image[result.source_y, result.source_x], atol=0.02), axis=1)
    assert exact.mean() > 0.5


def test_pull_push_keeps_known_values_and_fills_smoothly():
    values = np.zeros((17, 23, 1), np.float32)
    weight = np.zeros((17, 23), np.float32)
    values[0, :, 0], weight[0, :] = 1.0, 1.0  # top row known at 1
    values[-1, :, 0], weight[-1, :] = -1.0, 1.0  # bottom row known at -1
    smooth = fill.pull_push(values, weight)[:, :, 0]
    assert np.allclose(smooth[0], 1.0) and np.allclose(smooth[-1], -1.0)
    column = smooth[:, 11]
    assert (np.diff(column) <= 1e-6).all()  # from 1 down to -1 without overshoot
    assert abs(column[8]) < 0.35


def test_the_hole_may_touch_every_border():
    image, labels = _two_bands(40, 60)
    hole = np.zeros(labels.shape, bool)
    hole[:12, :] = True
    hole[:, :8] = True
    result = fill.fill_vacated(image, hole, labels, image, labels)
    assert result.rows.size == hole.sum() and np.isfinite(result.colours).all()
    assert (labels[result.source_y, result.source_x] == labels[result.rows, result.cols]).all()


def test_the_fill_does_not_depend_on_the_thread_count(monkeypatch):
    import numba

    image, labels = _two_bands(120, 160)
    hole = np.zeros(labels.shape, bool)
    hole[30:90, 50:110] = True
    results = []
    for threads in (1, max(2, numba.config.NUMBA_NUM_THREADS)):
        monkeypatch.setattr(fill, "thread_count", lambda threads=threads: threads)
        results.append(fill.fill_vacated(image, hole, labels, image, labels))
    first, second = results
    assert np.array_equal(first.colours, second.colours) and np.array_equal(first.source_x, second.source_x)


def test_warm_up_leaves_every_compiled_loop_ready():
    fill.warm_up()
    for loop in (fill.patchmatch.search, fill.patchmatch.vote, fill.patchmatch.costs, fill.patchmatch.patch_weights):
        assert loop.signatures  # compiled (or loaded from the cache) for the types the fill uses

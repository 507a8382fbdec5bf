"""The compiled search and vote (engine.patchmatch), each on its own."""

import numpy as np

from engine import patchmatch

from .conftest import textured

RADIUS = 3


def _noise(height, width, seed=0):
    """Per-pixel noise: a patch matches only itself, so a found source is exactly right or wrong."""
    return np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)


def _scene(height=40, width=50, shift=(3, -5), exemplar=None):
    """An exemplar (default noise), and an image that is the exemplar moved by `shift` (image(p) =
    exemplar(p - shift)), with a hole in the middle; one region everywhere."""
    exemplar = _noise(height, width) if exemplar is None else exemplar
    image = np.roll(exemplar, shift, axis=(0, 1))
    hole = np.zeros((height, width), bool)
    hole[15:25, 20:30] = True
    rows, cols = np.nonzero(hole)
    index = np.full((height, width), -1, np.int64)
    index[rows, cols] = np.arange(rows.size)
    labels = np.zeros((height, width), np.int32)
    return exemplar, image, hole, rows.astype(np.int64), cols.astype(np.int64), index, labels


def _distance(image, exemplar, labels, target, y, x, sy, sx, label_cost=0.1, travel_cost=0.0, weight=None):
    weight = np.ones(labels.shape, np.float32) if weight is None else weight
    return patchmatch.patch_distance(image, weight, target, exemplar, labels, y, x, sy, sx, RADIUS, label_cost, travel_cost)


def test_a_patch_is_at_distance_zero_from_itself_and_positive_elsewhere():
    exemplar = _noise(20, 20)
    labels = np.zeros((20, 20), np.int32)
    assert _distance(exemplar, exemplar, labels, labels, 10, 10, 10, 10) == 0.0
    assert _distance(exemplar, exemplar, labels, labels, 10, 10, 12, 9) > 0.05


def test_differing_labels_cost_label_cost_per_pixel_and_hide_colour():
    exemplar = _noise(20, 20)
    labels = np.zeros((20, 20), np.int32)
    target = labels.copy()
    target[:, 10:] = 1  # the right half of p's patch belongs to another region
    image = exemplar.copy()
    image[:, 10:] = 0.0  # its colours must not count
    distance = _distance(image, exemplar, labels, target, 10, 8, 10, 8, label_cost=0.1)
    # 7 x 2 pixels of the patch are in region 1 of the target but 0 in the exemplar
    assert np.isclose(distance, 0.1 * 14 / 49)


def test_offsets_outside_either_image_do_not_count():
    exemplar = _noise(20, 20)
    labels = np.zeros((20, 20), np.int32)
    assert _distance(exemplar, exemplar, labels, labels, 0, 0, 0, 0) == 0.0
    assert np.isfinite(_distance(exemplar, exemplar, labels, labels, 0, 19, 19, 0))


def test_travel_cost_prefers_the_nearer_of_two_equal_sources():
    exemplar = np.zeros((20, 40, 3), np.float32)
    labels = np.zeros((20, 40), np.int32)
    near = _distance(exemplar, exemplar, labels, labels, 10, 10, 10, 12, travel_cost=1.0)
    far = _distance(exemplar, exemplar, labels, labels, 10, 10, 10, 30, travel_cost=1.0)
    assert 0 < near < far


def test_a_distance_stopped_early_never_beats_the_best_it_was_given():
    exemplar = _noise(20, 20)
    labels = np.zeros((20, 20), np.int32)
    weight = np.ones((20, 20), np.float32)
    full = patchmatch.patch_weights(weight, np.array([10]), np.array([10]), RADIUS)[0]
    assert full == 49.0
    exact = _distance(exemplar, exemplar, labels, labels, 10, 10, 12, 9)
    assert patchmatch.patch_distance(exemplar, weight, labels, exemplar, labels, 10, 10, 12, 9, RADIUS, 0.1, 0.0,
                                     exact * 0.5, full) >= exact * 0.5
    assert patchmatch.patch_distance(exemplar, weight, labels, exemplar, labels, 10, 10, 12, 9, RADIUS, 0.1, 0.0,
                                     exact * 2.0, full) == exact


def test_zero_weight_pixels_are_ignored():
    exemplar = _noise(20, 20)
    labels = np.zeros((20, 20), np.int32)
    image = exemplar.copy()
    image[8:13, 8:13] = 5.0  # a wrong guess, at weight 0
    weight = np.ones((20, 20), np.float32)
    weight[8:13, 8:13] = 0.0
    assert _distance(image, exemplar, labels, labels, 10, 10, 10, 10, weight=weight) == 0.0


def _search(exemplar, image, rows, cols, index, labels, field, sources=None, passes=4, seed=0):
    height, width = labels.shape
    sources = labels.copy() if sources is None else sources
    weight = np.ones((height, width), np.float32)
    cost = patchmatch.costs(image, weight, labels, exemplar, labels, rows, cols, field, RADIUS, 0.1, 0.0)
    allowed = np.flatnonzero(sources.ravel() == 0).astype(np.int64)
    patch_weight = patchmatch.patch_weights(weight, rows, cols, RADIUS)
    band_start = np.array([0, rows.size // 2, rows.size], np.int64)  # two bands
    patchmatch.search(image, weight, labels, exemplar, labels, sources, rows, cols, index, field, cost, patch_weight,
                      band_start, allowed,
                      np.zeros(1, np.int64), np.array([allowed.size], np.int64), np.zeros(rows.size, np.int64),
                      passes, float(max(height, width)), RADIUS, 0.1, 0.0, seed)
    return field, cost


def test_search_finds_the_exact_shift_of_a_moved_copy():
    shift = (3, -5)
    exemplar, image, hole, rows, cols, index, labels = _scene(shift=shift, exemplar=textured(40, 50))
    field = np.zeros((rows.size, 2), np.int64)  # every pixel starts at the corner
    field, cost = _search(exemplar, image, rows, cols, index, labels, field)
    right = (field[:, 0] == rows - shift[0]) & (field[:, 1] == cols - shift[1])
    assert right.mean() > 0.95
    assert np.allclose(cost[right], 0.0)


def test_search_never_leaves_the_allowed_sources():
    exemplar, image, hole, rows, cols, index, labels = _scene()
    sources = np.full(labels.shape, -1, np.int32)
    sources[:, :20] = 0  # only the left strip may serve (the true sources are elsewhere)
    field = np.stack([np.full(rows.size, 5), np.full(rows.size, 5)], axis=1).astype(np.int64)
    field, _ = _search(exemplar, image, rows, cols, index, labels, field, sources)
    assert (sources[field[:, 0], field[:, 1]] == 0).all()


def test_search_is_deterministic_for_a_seed():
    exemplar, image, hole, rows, cols, index, labels = _scene()
    first, _ = _search(exemplar, image, rows, cols, index, labels, np.zeros((rows.size, 2), np.int64), passes=1)
    again, _ = _search(exemplar, image, rows, cols, index, labels, np.zeros((rows.size, 2), np.int64), passes=1)
    other, _ = _search(exemplar, image, rows, cols, index, labels, np.zeros((rows.size, 2), np.int64), passes=1, seed=1)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_a_coherent_field_votes_the_exact_moved_copy():
    shift = (3, -5)
    exemplar, image, hole, rows, cols, index, labels = _scene(shift=shift)
    field = np.stack([rows - shift[0], cols - shift[1]], axis=1).astype(np.int64)
    voted = patchmatch.vote(exemplar, labels, labels, rows, cols, index, field, np.ones(rows.size), RADIUS)
    assert np.allclose(voted, image[rows, cols], atol=1e-6)


def test_votes_from_another_region_are_refused():
    exemplar, image, hole, rows, cols, index, labels = _scene()
    exemplar_labels = np.ones(labels.shape, np.int32)  # every source pixel is of region 1, the hole of 0
    field = np.stack([rows, cols], axis=1).astype(np.int64)
    voted = patchmatch.vote(exemplar, exemplar_labels, labels, rows, cols, index, field, np.ones(rows.size), RADIUS)
    # no vote counts: each pixel falls back to its own centre's source colour
    assert np.allclose(voted, exemplar[rows, cols])


def test_a_read_only_install_keeps_its_compiled_loops_in_the_users_cache(monkeypatch, tmp_path):
    import os

    monkeypatch.setattr(patchmatch.numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    writable = os.access
    monkeypatch.setattr(patchmatch.os, "access", lambda path, mode: str(path).startswith(str(tmp_path)) and writable(path, mode))
    assert patchmatch._cache_ready()
    assert patchmatch.numba.config.CACHE_DIR == str(tmp_path / "simnet-manipulate" / "numba")


def test_with_no_writable_folder_the_loops_are_compiled_in_memory(monkeypatch, tmp_path):
    monkeypatch.setattr(patchmatch.numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(patchmatch.os, "access", lambda path, mode: False)
    assert not patchmatch._cache_ready()
    assert patchmatch.numba.config.CACHE_DIR == ""


def _cohere(exemplar, image, rows, cols, index, labels, field, tolerance):
    weight = np.ones(labels.shape, np.float32)
    cost = patchmatch.costs(image, weight, labels, exemplar, labels, rows, cols, field, RADIUS, 0.1, 0.0)
    return patchmatch.cohere(image, weight, labels, exemplar, labels, labels, rows, cols, index, field, cost, RADIUS,
                             0.1, 0.0, tolerance)


def test_coherence_gives_a_lone_offset_its_neighbours_offset_when_it_fits_as_well():
    """A flat picture: every source fits equally, so the one pixel whose offset differs from all
    its neighbours' takes theirs; the others keep theirs."""
    exemplar = np.full((40, 50, 3), 0.5, np.float32)
    _, image, _, rows, cols, index, labels = _scene(exemplar=exemplar)
    field = np.stack([rows - 3, cols + 5], axis=1)
    lone = int(index[20, 25])
    field[lone] = (rows[lone] + 9, cols[lone] - 11)
    new_field, _ = _cohere(exemplar, image, rows, cols, index, labels, field, 0.0)
    assert tuple(new_field[lone]) == (rows[lone] - 3, cols[lone] + 5)
    others = np.arange(rows.size) != lone
    assert np.array_equal(new_field[others], field[others])


def test_coherence_keeps_an_offset_that_fits_much_better():
    """Noise: the lone pixel's own offset is its exact match, its neighbours' a poor one for it."""
    exemplar, image, _, rows, cols, index, labels = _scene(shift=(3, -5))
    field = np.stack([rows + 8, cols - 6], axis=1)  # a wrong offset everywhere
    lone = int(index[20, 25])
    field[lone] = (rows[lone] - 3, cols[lone] + 5)  # the right one, here only
    new_field, _ = _cohere(exemplar, image, rows, cols, index, labels, field, 0.3)
    assert tuple(new_field[lone]) == (rows[lone] - 3, cols[lone] + 5)

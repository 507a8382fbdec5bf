"""Layered composition, one property per test, on small synthetic scenes (engine.compose)."""

import numpy as np
import pytest

from engine import compose, run
from engine.compose import FILLED, UNCHANGED, WARPED
from engine.edit import Edit, from_masks

from .conftest import figure_scene, square_mask, textured

MODELS = ("moments", "simnet-small")


def _move_scene(height=120, width=160):
    """A figure moved right, with a second region (a stripe) that the edit leaves alone."""
    exemplar, figure = figure_scene(height, width)
    labels = figure.astype(np.int32)
    labels[100:112, :] = 2
    target = labels.copy()
    target[target == 1] = 0
    target[square_mask(height, width, 90, 40, 30)] = 1
    return exemplar, labels, target


def _depths(exemplar):
    """The exemplar as float, as 8-bit levels, as 16-bit levels and with alpha."""
    rgba = np.concatenate([exemplar, textured(*exemplar.shape[:2], 1, seed=3)], axis=2)
    return {
        "float": exemplar,
        "8-bit": np.round(exemplar * 255) / np.float32(255),
        "16-bit": np.round(exemplar * 65535) / np.float32(65535),
        "rgba": rgba.astype(np.float32),
    }


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("depth", ["float", "8-bit", "16-bit", "rgba"])
def test_outside_the_edit_zone_the_result_is_the_exemplar_bit_for_bit(model, depth):
    exemplar, labels, target = _move_scene()
    exemplar = _depths(exemplar)[depth].astype(np.float32)
    result = run(exemplar, Edit(labels, target), model=model)
    outside = ~result.edit_zone
    assert outside.mean() > 0.5  # the zone is the edit, not the picture
    assert np.array_equal(result.pixels[outside], exemplar[outside])
    assert (result.kind[outside] == UNCHANGED).all()


def test_the_edit_zone_is_the_changed_labels_and_the_moving_regions_grown_by_the_band():
    exemplar, labels, target = _move_scene()
    result = run(exemplar, Edit(labels, target), model="moments")
    band = compose.edit_band(*labels.shape)
    assert band >= compose.MIN_BAND
    changed = (labels != target) | (target == 1) | (labels == 1)
    assert result.edit_zone[changed].all()
    ys, xs = np.nonzero(result.edit_zone)
    cy, cx = np.nonzero(changed)
    assert ys.min() >= cy.min() - band and ys.max() <= cy.max() + band
    assert xs.min() >= cx.min() - band and xs.max() <= cx.max() + band
    assert compose.edit_band(4096, 4096) > compose.edit_band(512, 512)  # it scales with the image


@pytest.mark.parametrize("model", MODELS)
def test_a_region_that_only_loses_area_keeps_its_own_pixels(model):
    """An enlarged figure covers part of its neighbour: the neighbour is not re-fitted."""
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    target = np.zeros_like(labels)
    target[30:80, 10:60] = 1  # the figure grows over the background
    result = run(exemplar, Edit(labels, target), model=model)
    assert result.moving == (1,)
    kept = (target == 0) & (labels == 0)
    assert np.array_equal(result.pixels[kept & ~_near(target == 1, 4)], exemplar[kept & ~_near(target == 1, 4)])


def _near(mask, distance):
    import cv2

    size = 2 * distance + 1
    return cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)


@pytest.mark.parametrize("model", MODELS)
def test_a_deleted_region_never_reappears(model):
    exemplar, figure = figure_scene()
    exemplar[figure] = (1.0, 0.0, 0.0)  # a colour nothing else has
    labels = figure.astype(np.int32)
    target = np.zeros_like(labels)  # the figure is deleted: the background takes its place
    result = run(exemplar, Edit(labels, target), model=model, provenance=True)
    assert (result.provenance.source_region != 1).all()
    red = (result.pixels[..., 0] > 0.6) & (result.pixels[..., 1] < 0.3) & (result.pixels[..., 2] < 0.3)
    assert not red.any()
    assert (result.kind[figure] == FILLED).all()


def test_a_fill_only_samples_its_own_region():
    """A hole over two target regions: each part is made from its own region's pixels."""
    exemplar = textured(100, 140)
    labels = np.zeros((100, 140), np.int32)
    labels[50:, :] = 1  # two halves: sky and sea
    labels[30:70, 50:90] = 2  # an island across the horizon
    target = labels.copy()
    target[30:70, 50:90] = np.where(np.arange(30, 70)[:, None] < 50, 0, 1)  # deleted
    result = run(exemplar, Edit(labels, target), model="moments", provenance=True)
    filled = result.kind == FILLED
    assert filled[30:70, 50:90].all()
    assert np.array_equal(result.provenance.source_region[filled], target[filled])
    source = result.provenance
    rows = np.rint(source.source_y[filled]).astype(int)
    cols = np.rint(source.source_x[filled]).astype(int)
    assert np.array_equal(labels[rows, cols], target[filled])
    # and the colour each filled pixel has is that source's own
    assert np.abs(result.pixels[filled] - exemplar[rows, cols]).max() < 0.35


def test_a_hole_larger_than_its_regions_source():
    exemplar = textured(80, 80)
    labels = np.zeros((80, 80), np.int32)
    labels[:, :6] = 1  # a thin strip of region 1
    target = labels.copy()
    target[10:70, 10:70] = 1  # region 1 now also claims a large square (from another region)
    result = run(exemplar, Edit(labels, target), model="moments", provenance=True)
    grown = (target == 1) & (labels == 0)
    assert np.isfinite(result.pixels).all()
    assert (result.provenance.source_region[grown] == 1).all()


@pytest.mark.parametrize("model", MODELS)
def test_the_result_is_deterministic(model):
    exemplar, labels, target = _move_scene()
    first = run(exemplar, Edit(labels, target), model=model, provenance=True)
    second = run(exemplar, Edit(labels, target), model=model, provenance=True)
    assert np.array_equal(first.pixels, second.pixels)
    assert np.array_equal(first.provenance.source_x, second.provenance.source_x)


def test_a_vacated_area_at_the_image_border():
    exemplar, _ = figure_scene()
    labels = np.zeros((120, 160), np.int32)
    labels[:40, :30] = 1  # a figure in the corner
    target = np.zeros_like(labels)
    target[60:100, 100:130] = 1
    result = run(exemplar, Edit(labels, target), model="moments", provenance=True)
    corner = (labels == 1) & (target == 0)
    assert (result.kind[corner] == FILLED).all()
    assert (result.provenance.source_region[corner] == 0).all()
    assert np.isfinite(result.pixels).all()


def test_an_edit_with_nothing_vacated_does_not_run_the_fill(monkeypatch):
    """A figure that only grows (scaled up in place) leaves no hole: the fill sees none."""
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    target = np.zeros_like(labels)
    target[35:75, 15:55] = 1  # the 30 px square at (20, 40) grown to 40 px around its centre
    holes = []
    real = compose.fill_vacated

    def spy(image, hole, *args):
        holes.append(int(hole.sum()))
        return real(image, hole, *args)

    monkeypatch.setattr(compose, "fill_vacated", spy)
    result = run(exemplar, Edit(labels, target), model="moments")
    assert holes == [0]
    assert not (result.kind == FILLED).any()
    assert (result.kind[target == 1] == WARPED).all()


def test_an_identity_edit_is_the_exemplar():
    exemplar, figure = figure_scene()
    labels = figure.astype(np.int32)
    result = run(exemplar, Edit(labels, labels), model="moments", provenance=True)
    assert np.array_equal(result.pixels, exemplar)
    assert not result.edit_zone.any() and (result.provenance.kind == UNCHANGED).all()


def test_provenance_of_a_moved_figure_points_back_to_it():
    exemplar, labels, target = _move_scene()
    result = run(exemplar, Edit(labels, target), model="moments", provenance=True)
    inner = square_mask(*labels.shape, 95, 45, 20)
    assert (result.provenance.kind[inner] == WARPED).all()
    assert np.allclose(result.provenance.source_x[inner] - np.nonzero(inner)[1], -70, atol=1.0)
    assert (result.provenance.source_region[inner] == 1).all()


@pytest.mark.parametrize("model", MODELS)
def test_a_region_revealed_by_a_figure_that_moved_stays_and_is_filled(model):
    """A small region partly hidden behind a figure: when the figure moves away the region gets
    its hidden part back, filled from itself, and is not stretched over it."""
    exemplar = textured(120, 160) * 0.4
    labels = np.zeros((120, 160), np.int32)
    labels[20:70, 20:70] = 2  # a patch of something, behind the figure
    labels[40:80, 50:90] = 1  # the figure, hiding the patch's lower right
    exemplar[labels == 2] += 0.5
    target = labels.copy()
    target[40:80, 50:90] = 0
    target[40:70, 50:70] = 2  # the patch's hidden corner, revealed
    target[60:100, 110:150] = 1  # the figure, moved right
    result = run(exemplar, Edit(labels, target), model=model, provenance=True)
    assert 2 not in result.moving and 1 in result.moving
    kept = (labels == 2) & ~_near((target != 2) | (labels != target), 4)  # away from the joins
    assert kept.sum() > 1000 and np.array_equal(result.pixels[kept], exemplar[kept])
    revealed = (target == 2) & (labels != 2)
    assert (result.kind[revealed] == FILLED).all() and (result.provenance.source_region[revealed] == 2).all()


def _horizon_scene(height=120, width=200):
    """Sky above row 60 and sea below, each its own texture, and a rock standing across the
    horizon: the background of a mask edit is both."""
    rng = np.random.default_rng(5)
    exemplar = np.empty((height, width, 3), np.float32)
    exemplar[:60] = [0.55, 0.7, 0.9]
    exemplar[60:] = [0.1, 0.25, 0.35]
    exemplar += rng.normal(0, 0.03, exemplar.shape).astype(np.float32)
    rock = square_mask(height, width, 30, 35, 40)
    exemplar[rock] = [0.35, 0.3, 0.25]
    return np.clip(exemplar, 0, 1), rock


@pytest.mark.parametrize("model", MODELS)
def test_a_moved_selection_leaves_sky_where_sky_was_and_sea_where_sea_was(model):
    # a mask edit: the background is one region, sky and sea alike, yet each filled pixel's
    # source is of the kind of place it is in
    exemplar, rock = _horizon_scene()
    moved = np.roll(rock, 110, axis=1)
    result = run(exemplar, from_masks(rock.shape, rock.astype(np.float32), moved.astype(np.float32)), model=model,
                 provenance=True)
    filled = (result.provenance.kind == FILLED) & rock & ~moved
    rows = np.arange(rock.shape[0])[:, None] + np.zeros_like(rock, dtype=int)
    above, below = filled & (rows < 55), filled & (rows >= 65)
    assert above.sum() > 200 and below.sum() > 200
    assert (result.provenance.source_y[above] < 60).all() and (result.provenance.source_y[below] >= 60).all()

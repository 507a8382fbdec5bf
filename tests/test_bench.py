"""The benchmark's own parts: edits whose ground truth is exact, and metrics that measure."""

import cv2
import numpy as np
import pytest

from bench import edits, metrics
from bench.methods import available_methods, cut_paste_inpaint
from engine import run
from engine.edit import Edit

from .conftest import square_mask, textured


def _scene():
    pixels = textured(96, 128)
    labels = np.zeros((96, 128), np.int32)
    labels[square_mask(96, 128, 20, 20, 30)] = 1
    labels[60:90, 70:120] = 2
    return pixels, labels


@pytest.mark.parametrize("kind", edits.KINDS)
def test_edits_are_exact_pulls_of_artwork_and_map(kind):
    pixels, labels = _scene()
    edit = edits.make_edit(pixels, labels, kind, np.random.default_rng(3))
    assert edit.ground_truth.shape == pixels.shape and edit.target_labels.shape == labels.shape
    assert edit.changed.any()
    assert set(np.unique(edit.target_labels)) <= set(np.unique(labels))
    # away from what moved (sub-pixel shifts fade out over a few pixels) all is as it was
    still = cv2.dilate(edit.changed.astype(np.uint8), np.ones((11, 11), np.uint8)) == 0
    if kind != "tps":  # a thin-plate spline moves everything
        assert still.mean() > 0.3
        assert np.abs(edit.ground_truth[still] - pixels[still]).max() < 1e-4
        assert np.array_equal(edit.target_labels[still], labels[still])


def test_edits_are_reproducible_from_the_seed():
    pixels, labels = _scene()
    first = edits.make_edits(pixels, labels, 4, seed=7)
    second = edits.make_edits(pixels, labels, 4, seed=7)
    assert [e.kind for e in first] == list(edits.KINDS)
    assert all(np.array_equal(a.ground_truth, b.ground_truth) for a, b in zip(first, second))


def test_region_field_is_the_affine_inside_and_identity_far_away():
    labels = np.zeros((80, 80), np.int32)
    labels[10:20, 10:20] = 1
    shift = np.array([[1.0, 0, -30], [0, 1.0, 0]])  # the region moves 30 px right
    field = edits.region_field(labels, 1, shift)
    grid = edits.grid(80, 80)
    assert np.allclose(field[12:18, 42:48], grid[12:18, 42:48] + [-30, 0])
    assert np.allclose(field[70:, :], grid[70:, :])


def test_metrics_measure():
    truth = textured(40, 50)
    assert metrics.psnr(truth, truth) == 100.0
    noisy = np.clip(truth + 0.1, 0, 1)
    assert 15 < metrics.psnr(noisy, truth) < 25
    assert metrics.ssim(truth, truth) == pytest.approx(1.0)
    assert metrics.ssim(np.roll(truth, 7, axis=1), truth) < 0.9
    mask = np.zeros((40, 50), bool)
    mask[:, :10] = True
    assert metrics.psnr(np.where(mask[..., None], noisy, truth), truth, ~mask) == 100.0
    a = np.zeros((40, 50), int); a[10:30, 10:30] = 1
    b = np.zeros((40, 50), int); b[10:30, 20:40] = 1
    assert metrics.region_iou(a, b, np.array([1])) == pytest.approx(200 / 600)
    assert metrics.boundary_f_score(a, a) == 1.0
    assert metrics.boundary_f_score(a, np.roll(a, 1, axis=1)) == 1.0  # within tolerance
    assert metrics.boundary_f_score(a, b) < 0.7


def test_methods_return_images_and_labels_the_right_size():
    pixels, labels = _scene()
    edit = edits.make_edit(pixels, labels, "move", np.random.default_rng(0))
    methods = available_methods()
    assert {"identity", "cut+paste+inpaint", "moments"} <= set(methods)
    for name, method in methods.items():
        image, predicted = method(edit.exemplar, edit.exemplar_labels, edit.target_labels)
        assert image.shape == pixels.shape and predicted.shape == labels.shape, name
        assert np.isfinite(image).all()


def test_provenance_regions_follow_the_motions():
    pixels, labels = _scene()
    target = np.zeros_like(labels)
    target[square_mask(96, 128, 60, 10, 30)] = 1
    manipulation = run(pixels, Edit((labels == 1).astype(int), target), provenance=True)
    predicted = manipulation.provenance.source_region
    assert metrics.region_iou(predicted, target, np.array([1])) > 0.9


def test_cut_and_paste_marks_inpainted_pixels_as_from_no_region():
    pixels, labels = _scene()
    target = labels.copy()
    target[target == 1] = 0
    target[square_mask(96, 128, 60, 10, 30)] = 1
    image, predicted = cut_paste_inpaint(pixels, labels, target)
    assert (predicted == -1).any() and (predicted[target == 1] == 1).mean() > 0.95


def test_vacate_edits_have_exact_ground_truth():
    from bench import edits as edit_module

    pixels, labels = _scene()
    cut, mask = edit_module.figure_cutout(pixels, labels)
    rng = np.random.default_rng(0)
    moved = edit_module.vacate_edit(pixels, labels, cut, mask, "vacate-move", rng)
    assert moved.vacated.any() and moved.placed.any()
    figure_at_x = moved.exemplar_labels == moved.figure
    assert np.array_equal(moved.vacated, figure_at_x & ~moved.placed)
    # where the figure is in neither place, exemplar, truth and maps are the host's own
    elsewhere = ~figure_at_x & ~moved.placed
    assert np.array_equal(moved.ground_truth[elsewhere], pixels[elsewhere])
    assert np.array_equal(moved.target_labels[~moved.placed], labels[~moved.placed])
    # the vacated pixels' truth is the host painting itself
    assert np.array_equal(moved.ground_truth[moved.vacated], pixels[moved.vacated])
    deleted = edit_module.vacate_edit(pixels, labels, cut, mask, "vacate-delete", rng)
    assert not deleted.placed.any() and np.array_equal(deleted.ground_truth, pixels)

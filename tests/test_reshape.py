"""Non-rigid reshapes (engine.reshape): a bend recovered as a smooth map, rigid edits left alone,
touching reshaped regions kept joined, hidden regions not squeezed, and the field's band cache."""

import cv2
import numpy as np
import pytest

from engine.blend import FieldPull
from engine.edit import Edit
from engine.pipeline import run
from engine.reshape import reshaped_motions
from engine.thin_plate import ThinPlate

SIDE = 256
GROUND, TREE, BUSH = 1, 2, 3
# The bend: a point at height y above the ground line is pulled from KICK * (BASE - y)^2 to its
# left, so the tree leans right by up to ~43 px at its tip and its base stays put.
BASE = 200
KICK = 30.0 / 125.0**2


def _scene(bush: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A sky, ground below BASE, a tall textured tree standing on it (and a bush touching the
    tree's right side). Returns the painting (S, S, 3) float32 and its label map."""
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    labels = np.zeros((SIDE, SIDE), np.int32)
    labels[ys > BASE] = GROUND
    labels[((xs - 128) / 20) ** 2 + ((ys - 125) / 75) ** 2 < 1] = TREE
    if bush:
        labels[(((xs - 158) / 12) ** 2 + ((ys - 150) / 30) ** 2 < 1) & (labels != TREE)] = BUSH
    painting = np.empty((SIDE, SIDE, 3), np.float32)
    painting[..., 0], painting[..., 1], painting[..., 2] = 0.7, 0.6, 0.5 + 0.4 * ys / SIDE
    painting[labels == GROUND] = (0.3, 0.5, 0.2)
    texture = 0.5 + 0.5 * np.sin(ys / 4.0) * np.cos(xs / 5.0)
    for region, colour in ((TREE, (0.1, 0.3, 0.1)), (BUSH, (0.5, 0.2, 0.1))):
        inside = labels == region
        painting[inside] = np.stack([c + 0.25 * texture for c in colour], -1)[inside]
    return painting, labels


def _bend_pull(points: np.ndarray) -> np.ndarray:
    """The true pull of the bend, pixel points (N, 2) -> (N, 2)."""
    x, y = points[:, 0], points[:, 1]
    return np.stack([x - KICK * np.clip(BASE - y, 0, None) ** 2, y], axis=1)


def _bent(labels: np.ndarray, regions: tuple[int, ...]) -> np.ndarray:
    """The target map: `regions` bent, the sky filling what they leave."""
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    pulled = _bend_pull(np.stack([xs.ravel(), ys.ravel()], axis=1)).astype(np.float32)
    warped = cv2.remap(labels.astype(np.float32), pulled[:, 0].reshape(SIDE, SIDE),
                       pulled[:, 1].reshape(SIDE, SIDE), cv2.INTER_NEAREST).astype(np.int32)
    target = labels.copy()
    target[np.isin(labels, regions)] = 0
    for region in regions:
        target[warped == region] = region
    return target


def _points(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.stack([cols, rows], axis=1).astype(np.float64)


def test_a_bend_is_carried_by_a_smooth_map_close_to_the_true_one():
    painting, labels = _scene()
    target = _bent(labels, (TREE,))
    field = run(painting, Edit(labels, target), "moments").motions[TREE].field
    assert field is not None
    inside = _points(target == TREE)
    error = np.hypot(*(field.pull(inside) - _bend_pull(inside)).T)
    # the tip moves ~43 px; the matched outline is good to a few px, the interior follows it
    assert error.mean() < 4.0 and np.percentile(error, 95) < 8.0 and error.max() < 12.0
    assert (field.jacobian_determinants(inside) > 0).all()  # no fold anywhere in the region


def test_the_bent_result_is_closer_to_the_truth_than_the_affine_one():
    painting, labels = _scene()
    target = _bent(labels, (TREE,))
    pulled = _bend_pull(_points(np.ones((SIDE, SIDE), bool))).astype(np.float32)
    truth = cv2.remap(painting, pulled[:, 0].reshape(SIDE, SIDE), pulled[:, 1].reshape(SIDE, SIDE), cv2.INTER_LINEAR)
    tree = target == TREE
    errors = [np.abs(run(painting, Edit(labels, target), "moments", reshape=r).pixels - truth)[tree].mean()
              for r in (False, True)]
    assert errors[1] < 0.92 * errors[0], errors


def test_a_rigid_move_keeps_the_models_motion_bit_for_bit():
    painting, labels = _scene()
    target = labels.copy()
    target[labels == TREE] = 0
    target[np.roll(labels == TREE, (-9, 14), axis=(0, 1))] = TREE
    edit = Edit(labels, target)
    reshaped, plain = run(painting, edit, "moments"), run(painting, edit, "moments", reshape=False)
    assert all(motion.field is None for motion in reshaped.motions.values())
    np.testing.assert_array_equal(reshaped.pixels, plain.pixels)


def test_touching_regions_bent_together_share_one_map():
    """One spline for the tree and the bush that leans with it: their shared edge cannot tear."""
    painting, labels = _scene(bush=True)
    target = _bent(labels, (TREE, BUSH))
    motions = run(painting, Edit(labels, target), "moments").motions
    tree, bush = motions[TREE].field, motions[BUSH].field
    assert tree is not None and bush is not None
    # along the shared edge both regions pull each pixel from the same exemplar point
    shared = (target == TREE) & cv2.dilate((target == BUSH).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edge = _points(shared)
    assert len(edge) > 20
    np.testing.assert_allclose(tree.pull(edge), bush.pull(edge), atol=1e-9)


def test_a_region_moved_under_a_neighbour_is_not_squeezed_into_what_shows():
    """The tree moved right and half behind a new wall: what shows is a part of it, and the
    model's motion (a move) is right for that part."""
    painting, labels = _scene()
    target = labels.copy()
    target[labels == TREE] = 0
    target[np.roll(labels == TREE, 30, axis=1)] = TREE
    target[:, 150:] = np.where(target[:, 150:] == TREE, GROUND, target[:, 150:])
    result = run(painting, Edit(labels, target), "moments")
    assert result.motions[TREE].field is None
    shown = cv2.erode((target == TREE).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    moved = np.roll(painting, 30, axis=1)
    assert np.abs(result.pixels - moved)[shown].max() < 0.02


def test_unchanged_and_missing_regions_keep_their_motions():
    painting, labels = _scene()
    target = labels.copy()
    target[labels == TREE] = 0  # deleted
    motions = run(painting, Edit(labels, target), "moments", reshape=False).motions
    assert reshaped_motions(labels, target, motions) == motions


@pytest.mark.parametrize("boxes", [[(10, 20, 90, 60), (30, 25, 60, 50)], [(10, 20, 90, 60), (80, 50, 120, 70)]])
def test_the_field_band_cache_gives_the_same_maps_as_a_fresh_evaluation(boxes):
    """The second box lies inside the first (cropped from the cache) or not (evaluated anew)."""
    points = np.random.default_rng(0).uniform(0, 128, (24, 2))
    spline = ThinPlate.fit(points, points + np.random.default_rng(1).normal(0, 4, points.shape), 128.0, 1e-3)
    pull = FieldPull(spline)
    for box in boxes:
        for cached, fresh in zip(pull.maps(box), spline.maps(box)):
            np.testing.assert_array_equal(cached, fresh)

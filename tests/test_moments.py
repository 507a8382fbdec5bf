import cv2
import numpy as np
import pytest

from engine import motion
from engine.masks import mask_moments
from engine.models import load_model
from engine.models.alignment import best_rotation
from engine.models.moments import moments_motion

from .conftest import square_mask, textured


def _pixel_affine(region_motion, index, shape):
    return motion.normalised_to_pixel_affines(region_motion.affines[index], *shape)


def _l_shape(height, width, centre, angle_degrees, scale=1.0):
    points = np.array([[-30, -40], [10, -40], [10, 20], [40, 20], [40, 40], [-30, 40]], float) * scale
    theta = np.radians(angle_degrees)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    polygon = points @ rotation.T + centre
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, shift=4)
    return mask.astype(bool)


def test_moments_of_a_rectangle():
    mask = np.zeros((50, 60), bool)
    mask[10:20, 5:45] = True
    centroid, covariance = mask_moments(mask)
    assert np.allclose(centroid, [24.5, 14.5])
    assert np.allclose(covariance, np.diag([(40**2) / 12, (10**2) / 12]), rtol=1e-6)


def test_translation_and_scale_are_recovered():
    shape = (200, 240)
    exemplar = textured(*shape)
    source = _l_shape(*shape, (80, 90), 0)
    target = _l_shape(*shape, (150, 110), 0, scale=1.3)
    result = moments_motion(exemplar, source, target)
    affine = _pixel_affine(result, 1, shape)
    # target (150, 110) is the L's anchor; it must pull from the source anchor (80, 90)
    assert np.allclose(affine @ [150, 110, 1], [80, 90], atol=1.5)
    assert np.allclose(affine[:, :2], np.eye(2) / 1.3, atol=0.03)
    assert result.weights[1].mean() > 0.9  # moving wins over staying


@pytest.mark.parametrize("angle", [-50.0, 25.0, 90.0])
def test_rotation_of_an_asymmetric_shape_is_recovered(angle):
    shape = (240, 240)
    source = _l_shape(*shape, (120, 120), 0)
    target = _l_shape(*shape, (120, 120), angle)
    affine = _pixel_affine(moments_motion(textured(*shape), source, target), 1, shape)
    recovered = np.degrees(np.arctan2(affine[1, 0], affine[0, 0]))
    assert abs(((recovered + angle) + 180) % 360 - 180) < 3.0  # pulling undoes the turn


def test_symmetric_shapes_are_not_turned():
    flat = np.ones(64)
    assert best_rotation(flat, flat) == 0.0
    shape = (100, 100)
    source = square_mask(*shape, 10, 10, 30)
    target = square_mask(*shape, 50, 40, 30)
    affine = _pixel_affine(moments_motion(textured(*shape), source, target), 1, shape)
    assert np.allclose(affine[:, :2], np.eye(2), atol=1e-6)


def test_background_stays_where_a_figure_left():
    shape = (120, 160)
    exemplar = np.full(shape + (3,), 0.2, np.float32)
    exemplar[..., 1] = np.linspace(0.2, 0.6, 160)[None, :]  # a gentle background gradient
    figure = square_mask(*shape, 20, 40, 30)
    exemplar[figure] = (1.0, 0.0, 0.0)
    moved = square_mask(*shape, 100, 50, 30)
    background = moments_motion(exemplar, ~figure, ~moved)
    assert np.allclose(background.affines[0], [[1, 0, 0], [0, 1, 0]])
    assert (background.weights[0] == 1.0).all()  # it does not drift with its centroid
    assert len(background.affines) == 2  # identity and the moved affine; fills are the composition's
    result = load_model("moments")
    assert result.name == "moments"


def test_keypoints_are_normalised_and_include_centroids():
    shape = (100, 200)
    source = square_mask(*shape, 10, 10, 20)
    target = square_mask(*shape, 150, 60, 20)
    result = moments_motion(textured(*shape), source, target)
    assert result.keypoints_src.shape == result.keypoints_tgt.shape == (9, 2)
    assert np.allclose(result.keypoints_src[0], [(2 * 19.5 + 1) / 200 - 1, (2 * 19.5 + 1) / 100 - 1])
    assert np.abs(result.keypoints_tgt).max() <= 1.0

"""Grid maps (engine.grid_map): exact on affine maps, close on smooth ones, no kink at knot lines,
and the remap maps equal to the point evaluation."""

import numpy as np
import pytest

from engine.grid_map import GridMap, cubic_weights


def _smooth(points: np.ndarray) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    return np.stack([x + 6 * np.sin(y / 40.0), y + 4 * np.cos(x / 55.0)], axis=1)


def test_the_weights_sum_to_one_and_interpolate_the_knots():
    knots = np.arange(10) * 8.0 - 12.0
    weights = cubic_weights(knots[1:-2], -12.0, 8.0, 10)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(weights, np.eye(10)[1:-2], atol=1e-12)


def test_an_affine_map_is_reproduced_exactly_everywhere_in_the_image():
    affine = np.array([[0.9, 0.2, 12.0], [-0.1, 1.1, -7.0]])
    field = GridMap.sample(lambda p: p @ affine[:, :2].T + affine[:, 2], 90, 130, 16.0)
    corners = np.array([[-0.5, -0.5], [129.5, 89.5], [-0.5, 89.5], [64.3, 17.9]])
    np.testing.assert_allclose(field.pull(corners), corners @ affine[:, :2].T + affine[:, 2], atol=1e-9)
    np.testing.assert_allclose(field.affine, affine, atol=1e-9)


def test_a_smooth_map_is_followed_between_the_knots():
    field = GridMap.sample(_smooth, 200, 300, 12.0)
    points = np.random.default_rng(0).uniform(-0.5, 199.5, (500, 2)) * [1.5, 1.0]
    assert np.abs(field.pull(points) - _smooth(points)).max() < 0.05


@pytest.mark.parametrize("box", [(0, 0, 300, 200), (17, 9, 18, 10), (250, 150, 300, 200)])
def test_the_remap_maps_are_the_map_at_every_pixel(box):
    field = GridMap.sample(_smooth, 200, 300, 12.0)
    map_x, map_y = field.maps(box)
    ys, xs = np.mgrid[box[1] : box[3], box[0] : box[2]]
    pulled = field.pull(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    np.testing.assert_allclose(map_x.ravel(), pulled[:, 0], atol=1e-3)
    np.testing.assert_allclose(map_y.ravel(), pulled[:, 1], atol=1e-3)


def test_the_slope_does_not_jump_at_a_knot_line():
    """Catmull-Rom is C1: the one-sided slopes at a knot agree (a bilinear grid's would not)."""
    field = GridMap.sample(_smooth, 200, 300, 12.0)
    knot_x = field.first[0] + 10 * field.cell
    h = 1e-4
    at = np.array([[knot_x, 77.0]])
    left = (field.pull(at) - field.pull(at - [h, 0])) / h
    right = (field.pull(at + [h, 0]) - field.pull(at)) / h
    np.testing.assert_allclose(left, right, atol=1e-3)
    assert field.jacobian_determinants(at)[0] > 0

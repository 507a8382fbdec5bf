"""Thin-plate splines (engine.thin_plate): fit, exact evaluation, bending energy, Jacobian."""

import numpy as np
import pytest

from engine.thin_plate import CHUNK, ThinPlate


def _points(count, seed=0, side=200.0):
    return np.random.default_rng(seed).uniform(0.0, side, (count, 2))


def test_an_interpolating_spline_passes_through_its_points():
    target = _points(30)
    source = target + np.random.default_rng(1).normal(0.0, 5.0, target.shape)
    spline = ThinPlate.fit(target, source, scale=200.0)
    np.testing.assert_allclose(spline.pull(target), source, atol=1e-6)


def test_affine_data_gives_the_affine_and_no_bending():
    target = _points(20)
    affine = np.array([[0.9, 0.2, 12.0], [-0.1, 1.1, -7.0]])
    spline = ThinPlate.fit(target, target @ affine[:, :2].T + affine[:, 2], scale=200.0, smoothing=1e-3)
    np.testing.assert_allclose(spline.affine, affine, atol=1e-8)
    assert abs(spline.bending_energy()) < 1e-12
    elsewhere = _points(50, seed=2, side=400.0)
    np.testing.assert_allclose(spline.pull(elsewhere), elsewhere @ affine[:, :2].T + affine[:, 2], atol=1e-6)


def test_smoothing_trades_the_fit_for_less_bending():
    target = _points(40)
    source = target + np.random.default_rng(3).normal(0.0, 3.0, target.shape)
    exact = ThinPlate.fit(target, source, scale=200.0)
    smooth = ThinPlate.fit(target, source, scale=200.0, smoothing=1e-2)
    assert smooth.bending_energy() < exact.bending_energy()
    assert np.abs(smooth.pull(target) - source).max() > 1e-3


@pytest.mark.parametrize("box", [(0, 0, 200, 150), (37, 11, 38, 12), (5, 3, 205, 3 + CHUNK // 200 + 2)])
def test_the_remap_maps_are_the_spline_at_every_pixel(box):
    """float32 maps against the float64 spline, across chunk boundaries and for a 1-pixel box."""
    target = _points(48, seed=4)
    spline = ThinPlate.fit(target, target + np.random.default_rng(5).normal(0.0, 8.0, target.shape), 200.0, 1e-3)
    map_x, map_y = spline.maps(box)
    x0, y0, x1, y1 = box
    assert map_x.shape == map_y.shape == (y1 - y0, x1 - x0) and map_x.dtype == np.float32
    ys, xs = np.mgrid[y0:y1, x0:x1]
    exact = spline.pull(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64))
    assert np.abs(map_x.ravel() - exact[:, 0]).max() < 5e-3
    assert np.abs(map_y.ravel() - exact[:, 1]).max() < 5e-3


def test_jacobian_determinant_of_an_affine_is_its_determinant_and_a_fold_is_negative():
    target = _points(12)
    affine = np.array([[2.0, 0.5, 0.0], [0.0, 1.5, 3.0]])
    spline = ThinPlate.fit(target, target @ affine[:, :2].T + affine[:, 2], 200.0)
    np.testing.assert_allclose(spline.jacobian_determinants(_points(10, seed=6)), 3.0, rtol=1e-6)
    mirrored = ThinPlate.fit(target, target * [-1.0, 1.0], 200.0)
    assert (mirrored.jacobian_determinants(_points(10, seed=6)) < 0).all()

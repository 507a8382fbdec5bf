"""Outline correspondence (engine.outlines), each step on its own."""

import cv2
import numpy as np

from engine.motion import IDENTITY
from engine.outlines import best_shift, match_outlines, outline, warp_pairs


def _ellipse(height=160, width=200, centre=(100, 80), axes=(60, 30), angle=0.0):
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, centre, axes, angle, 0, 360, 1, -1)
    return mask.astype(bool)


def test_outline_points_are_equally_spaced_on_the_largest_contour():
    mask = _ellipse()
    mask[5:9, 5:9] = True  # a speck: not the outline
    points = outline(mask, 64)
    assert points.shape == (64, 2)
    steps = np.hypot(*np.diff(np.vstack([points, points[:1]]), axis=0).T)
    assert steps.std() / steps.mean() < 0.05
    assert points[:, 0].min() > 30  # all on the ellipse, none on the speck


def test_outline_of_a_region_too_small_for_a_contour_is_none():
    mask = np.zeros((20, 20), bool)
    mask[10, 10] = True
    assert outline(mask, 16) is None


def test_best_shift_finds_a_cyclic_roll():
    points = outline(_ellipse(), 48)
    assert best_shift(points, np.roll(points, -7, axis=0)) == 41  # source[i + 41] == moved[i]
    assert best_shift(points, np.roll(points, 5, axis=0)) == 5


def test_warp_pairs_is_monotone_and_pairs_the_ends():
    moved = np.stack([np.linspace(0, 10, 20), np.zeros(20)], axis=1)
    source = np.stack([np.linspace(0, 10, 30) ** 1.5 / 10**0.5, np.zeros(30)], axis=1)
    index = warp_pairs(moved, source)
    assert index.shape == (20,) and (np.diff(index) >= 0).all()
    assert index[0] < 1.5 and index[-1] == 29


def test_a_moved_outline_is_matched_to_where_it_came_from():
    source_mask = _ellipse(angle=0.0)
    target_mask = _ellipse(centre=(110, 85), angle=0.0)
    source, target = outline(source_mask, 64), outline(target_mask, 64)
    shift = np.array([[1.0, 0.0, -10.0], [0.0, 1.0, -5.0]])
    error = np.hypot(*(match_outlines(source, target, shift) - (target + [-10.0, -5.0])).T)
    # the two outlines are sampled from different starts: within half a point spacing (4.5 px)
    assert error.max() < 3.0 and error.mean() < 1.0


def test_a_mirroring_prior_keeps_the_direction_right():
    source_mask = _ellipse(angle=20.0)
    target_mask = source_mask[:, ::-1]
    source, target = outline(source_mask, 64), outline(target_mask, 64)
    width = source_mask.shape[1]
    mirror = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])
    error = np.hypot(*(match_outlines(source, target, mirror) - (target @ mirror[:, :2].T + mirror[:, 2])).T)
    assert error.max() < 3.0 and error.mean() < 1.0
    assert np.abs(match_outlines(source, source, IDENTITY) - source).max() < 1e-9

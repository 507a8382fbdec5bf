"""The geometric alignment of two region masks that the baseline answers with and the learned
model starts from: moments, the rotation that matches their contours, and whether moving
explains the target better than staying."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..masks import contour_points, mask_moments, region_box, sample_mask
from ..motion import IDENTITY

PROFILE_ANGLES = 128


MAX_SAMPLES = 40_000


# Staying (identity) wins unless moving explains the target this much better (IoU).
STAY_MARGIN = 0.02


# A rotation is only looked for when the unturned profiles differ by more than this (mean
# squared relative radius: 0.005 is about 7% rms), and must then cut the mismatch by
# ROTATION_GAIN: near-symmetric shapes, like a frame-filling background, are never turned.
MIN_PROFILE_MISMATCH = 0.005


ROTATION_GAIN = 0.15


def sqrt_spd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive-definite (2, 2) matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 1e-12))) @ vectors.T


def radial_profile(points: np.ndarray, centroid: np.ndarray, whiten: np.ndarray, angles: int) -> np.ndarray:
    """Largest whitened radius of the contour in each of `angles` equal sectors, sector 0
    starting at angle 0; empty sectors interpolated from their neighbours. -> (angles,)."""
    whitened = (points - centroid) @ whiten.T
    theta = np.arctan2(whitened[:, 1], whitened[:, 0]) % (2 * np.pi)
    sector = np.minimum((theta / (2 * np.pi) * angles).astype(int), angles - 1)
    radius = np.full(angles, np.nan)
    np.fmax.at(radius, sector, np.hypot(whitened[:, 0], whitened[:, 1]))
    known = np.flatnonzero(~np.isnan(radius))
    if known.size == 0:
        return np.ones(angles)
    return np.interp(np.arange(angles), known, radius[known], period=angles)


def best_rotation(profile_src: np.ndarray, profile_tgt: np.ndarray) -> float:
    """Angle a (radians, in [-pi, pi)) such that the target profile is the source profile
    turned by a: profile_tgt(t) ~ profile_src(t - a). 0 unless turning clearly fits better."""
    n = len(profile_src)
    if min(profile_src.mean(), profile_tgt.mean()) < 1e-6:  # a point has no shape to turn
        return 0.0
    src = profile_src / profile_src.mean()
    tgt = profile_tgt / profile_tgt.mean()
    errors = np.array([np.mean((tgt - np.roll(src, shift)) ** 2) for shift in range(n)])
    shift = int(errors.argmin())
    if errors[0] <= MIN_PROFILE_MISMATCH or errors[0] - errors[shift] <= ROTATION_GAIN * errors[0]:
        return 0.0
    before, after = errors[(shift - 1) % n], errors[(shift + 1) % n]
    curvature = before - 2 * errors[shift] + after
    refine = 0.5 * (before - after) / curvature if curvature > 1e-12 else 0.0
    angle = (shift + refine) * 2 * np.pi / n
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


@dataclass(frozen=True)
class Alignment:
    """Steps 1-3 of the module docstring for one region: the moved affine, whether it wins
    over staying, and the shape measures behind it (pixel coordinates)."""

    moved: np.ndarray  # (2, 3) pulling affine target -> exemplar
    moves: bool  # False: the identity explains the target at least as well
    angle: float
    centroids: tuple[np.ndarray, np.ndarray]  # exemplar's, target's
    roots: tuple[np.ndarray, np.ndarray]  # covariance square roots
    profiles: tuple[np.ndarray, np.ndarray]  # radial profiles

    @property
    def primary(self) -> np.ndarray:
        """The chosen motion: the moved affine, or the identity when the region stays."""
        return self.moved if self.moves else IDENTITY


def align(source_mask: np.ndarray, target_mask: np.ndarray) -> Alignment:
    """The baseline's alignment of two non-empty region masks (H, W) bool (same size)."""
    c_src, cov_src = mask_moments(source_mask)
    c_tgt, cov_tgt = mask_moments(target_mask)
    sqrt_src, sqrt_tgt = sqrt_spd(cov_src), sqrt_spd(cov_tgt)
    whiten_src, whiten_tgt = np.linalg.inv(sqrt_src), np.linalg.inv(sqrt_tgt)
    profile_src = radial_profile(contour_points(source_mask), c_src, whiten_src, PROFILE_ANGLES)
    profile_tgt = radial_profile(contour_points(target_mask), c_tgt, whiten_tgt, PROFILE_ANGLES)
    target_points = _target_samples(target_mask)
    areas = np.count_nonzero(source_mask), np.count_nonzero(target_mask)

    def pulled_iou(affine: np.ndarray) -> float:
        return _pulled_iou(affine, source_mask, areas, target_points)

    def turned(angle: float) -> np.ndarray:
        linear = sqrt_src @ _rotation(-angle) @ whiten_tgt
        return np.concatenate([linear, (c_src - linear @ c_tgt)[:, None]], axis=1)

    angle = best_rotation(profile_src, profile_tgt)
    if angle != 0.0:  # the profiles give the angle to a sector; the masks' overlap refines it
        sector = 2 * np.pi / PROFILE_ANGLES
        angle = max(angle + np.linspace(-2 * sector, 2 * sector, 17), key=lambda a: pulled_iou(turned(a)))
    moved = turned(angle)
    # Stay or move: whichever pulls an exemplar mask closer to the target (ties stay).
    moves = pulled_iou(moved) > pulled_iou(IDENTITY) + STAY_MARGIN
    return Alignment(moved, moves, angle, (c_src, c_tgt), (sqrt_src, sqrt_tgt), (profile_src, profile_tgt))


def _pulled_iou(affine, source_mask, areas, target_points) -> float:
    """IoU of the exemplar region pulled by `affine` with the target region, measured at
    sampled target pixels; the pulled region's area follows from the affine's determinant.
    areas: the pixel counts of the exemplar and target regions."""
    source_area, target_area = areas
    overlap = sample_mask(source_mask, _apply(affine, target_points)).mean() * target_area
    pulled_area = source_area / max(abs(np.linalg.det(affine[:, :2])), 1e-12)
    return float(overlap / max(target_area + pulled_area - overlap, 1e-12))


def _target_samples(target_mask: np.ndarray) -> np.ndarray:
    """Pixel positions (N, 2) of a target region: all of them up to MAX_SAMPLES, else those
    on a regular grid of about MAX_SAMPLES (found in the region's box, not the whole image)."""
    x0, y0, x1, y1 = region_box(target_mask)
    step = max(1, int(np.ceil(np.sqrt(np.count_nonzero(target_mask) / MAX_SAMPLES))))
    rows, cols = np.nonzero(target_mask[y0:y1:step, x0:x1:step])
    return np.stack([x0 + cols * step, y0 + rows * step], axis=1).astype(np.float64)

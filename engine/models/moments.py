"""`moments`: the training-free baseline that the learned SIM-Net is measured against.

It answers the keypoint network's question ("which affine motions carry this exemplar region
into that target region?") from the two masks' geometry alone:

1. Moments: each mask's centroid c and covariance C. The whitening S^-1 = C^-1/2 maps either
   region onto a shape with unit covariance, so T(z) = c_src + S_src R S_tgt^-1 (z - c_tgt)
   carries target onto exemplar up to the rotation R, which moments cannot see.
2. Contour points: the radius of each whitened contour as a function of angle; R is the
   rotation that best aligns the two radius profiles (no rotation when the shape is too
   symmetric to tell). Matched contour points are reported as keypoints.
3. Stay or move: the identity motion competes with T; the one whose pulled exemplar mask has the
   higher IoU with the target wins (ties go to staying). This keeps a large background region in
   place when a small figure moves out of it, instead of shifting it by its centroid's drift.
Motions are [identity, T], the winner holding all the weight, on a grid over the target region's
box (at most WORK_SIZE on its long side). Target pixels that the winner pulls from outside the
exemplar region (the place a figure left, a part that grew) are the composition's to fill
(engine.compose, engine.fill), as for every model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..motion import pixel_to_normalised_affines, points_to_normalised
from ..transport import RegionMotion, bounding_box

WORK_SIZE = 256
PROFILE_ANGLES = 128
KEYPOINT_ANGLES = 8
MAX_SAMPLES = 40_000
# Staying (identity) wins unless moving explains the target this much better (IoU).
STAY_MARGIN = 0.02
# A rotation is only looked for when the unturned profiles differ by more than this (mean
# squared relative radius: 0.005 is about 7% rms), and must then cut the mismatch by
# ROTATION_GAIN: near-symmetric shapes, like a frame-filling background, are never turned.
MIN_PROFILE_MISMATCH = 0.005
ROTATION_GAIN = 0.15
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class MomentsModel:
    name = "moments"
    description = "training-free baseline: affine motions from mask moments and contour points"

    def region_motion(
        self, exemplar: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray
    ) -> RegionMotion:
        """exemplar (H, W, C) float32 and one region's masks (H, W) bool -> its motion."""
        return moments_motion(exemplar, source_mask, target_mask)


def mask_moments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (2,) and covariance (2, 2), in pixels, of a non-empty mask (H, W) bool.

    The covariance includes each pixel's own spread (1/12 per axis), so one pixel is not a point.
    """
    x0, y0, x1, y1 = bounding_box(mask)
    # The 0/1 bytes as grey levels: OpenCV's binary-image path is several times slower.
    m = cv2.moments(np.asarray(mask, bool)[y0:y1, x0:x1].view(np.uint8))
    centroid = np.array([m["m10"] / m["m00"] + x0, m["m01"] / m["m00"] + y0])
    covariance = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
    return centroid, covariance + np.eye(2) / 12.0


def sqrt_spd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive-definite (2, 2) matrix."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 1e-12))) @ vectors.T


def contour_points(mask: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of the outer contours of a non-empty mask (H, W) bool."""
    x0, y0, x1, y1 = bounding_box(mask, margin=1)
    contours, _ = cv2.findContours(
        mask[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    return points + [x0, y0]


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


def sample_mask(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """mask (H, W) bool at pixel points (N, 2), nearest; False outside the image."""
    cols = np.rint(points[:, 0]).astype(np.int64)
    rows = np.rint(points[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (rows >= 0) & (cols < mask.shape[1]) & (rows < mask.shape[0])
    hit = np.zeros(len(points), bool)
    hit[inside] = mask[rows[inside], cols[inside]]
    return hit


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


def moments_motion(exemplar: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray) -> RegionMotion:
    """The baseline's motion for one region (see the module docstring).

    exemplar: (H, W, C) float32 (unused: the baseline sees only the masks); source_mask,
    target_mask: (H, W) bool, both non-empty.
    """
    height, width = target_mask.shape
    alignment = align(source_mask, target_mask)
    affines = [IDENTITY, alignment.moved]
    grid_box, _, (grid_h, grid_w), _ = region_grid(target_mask)
    weights = np.zeros((2, grid_h, grid_w), np.float32)
    weights[int(alignment.moves)] = 1.0
    (c_src, c_tgt), (sqrt_src, sqrt_tgt), (profile_src, profile_tgt) = alignment.centroids, alignment.roots, alignment.profiles
    keypoints_src, keypoints_tgt = _keypoints(
        c_src, sqrt_src, profile_src, c_tgt, sqrt_tgt, profile_tgt, alignment.angle
    )
    return RegionMotion(
        affines=pixel_to_normalised_affines(np.array(affines), height, width),
        weights=weights,
        box=grid_box,
        keypoints_src=points_to_normalised(keypoints_src, height, width),
        keypoints_tgt=points_to_normalised(keypoints_tgt, height, width),
    )


def region_grid(target_mask: np.ndarray):
    """The working grid over a non-empty target region's box, at most WORK_SIZE cells on its
    long side. Returns its extent (x0, y0, x1, y1) in full-resolution pixel edges, the cell
    centres (N, 2) in pixels, row by row, its shape (h, w), and a cell's side in pixels."""
    box = bounding_box(target_mask)
    scale = min(1.0, WORK_SIZE / max(box[2] - box[0], box[3] - box[1]))
    grid_w = max(1, int(np.ceil((box[2] - box[0]) * scale)))
    grid_h = max(1, int(np.ceil((box[3] - box[1]) * scale)))
    grid_box = (box[0], box[1], box[0] + grid_w / scale, box[1] + grid_h / scale)
    cols, rows = np.meshgrid(np.arange(grid_w), np.arange(grid_h))
    centres = np.stack([box[0] + (cols + 0.5) / scale - 0.5, box[1] + (rows + 0.5) / scale - 0.5], -1)
    return grid_box, centres.reshape(-1, 2), (grid_h, grid_w), 1.0 / scale


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
    x0, y0, x1, y1 = bounding_box(target_mask)
    step = max(1, int(np.ceil(np.sqrt(np.count_nonzero(target_mask) / MAX_SAMPLES))))
    rows, cols = np.nonzero(target_mask[y0:y1:step, x0:x1:step])
    return np.stack([x0 + cols * step, y0 + rows * step], axis=1).astype(np.float64)


def _keypoints(c_src, sqrt_src, profile_src, c_tgt, sqrt_tgt, profile_tgt, angle):
    """Centroids plus KEYPOINT_ANGLES matched contour points of both regions, in pixels."""
    n = len(profile_tgt)
    theta = np.arange(KEYPOINT_ANGLES) * 2 * np.pi / KEYPOINT_ANGLES
    theta_src = theta - angle

    def on_contour(theta_values, profile, centre, sqrt):
        radius = np.interp(theta_values % (2 * np.pi) / (2 * np.pi) * n, np.arange(n + 1), np.append(profile, profile[0]))
        unit = np.stack([np.cos(theta_values), np.sin(theta_values)], -1) * radius[:, None]
        return np.vstack([centre, centre + unit @ sqrt.T])

    return on_contour(theta_src, profile_src, c_src, sqrt_src), on_contour(theta, profile_tgt, c_tgt, sqrt_tgt)

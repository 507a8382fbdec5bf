"""SIM-Net's local affine motions, evaluated analytically at any resolution.

Coordinates, defined once for the whole engine:
- Pixel coordinates put pixel centres on integers: pixel (col, row) has centre (x, y) = (col, row)
  and the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5] (OpenCV's convention).
- Normalised coordinates map that span onto [-1, 1], x first: x_n = (2 x + 1) / W - 1. This is
  `grid_sample(..., align_corners=False)`, so the same keypoints describe the same places at
  256x256 and at full resolution: fields are never upsampled, only re-evaluated.
- A motion is a (2, 3) affine matrix A that *pulls*: target point z samples the exemplar at
  A @ [z, 1].

For K keypoints (FOMM's formula, which SIM-Net uses), motion 0 is the identity and motion k is
    T_k(z) = p_k^src + J_k^src (J_k^tgt)^-1 (z - p_k^tgt),
with a closed-form 2x2 inverse so that the same formula exports to ONNX (which has no Inverse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid_map import GridMap
from .thin_plate import ThinPlate

# A smooth pulling map, exact per pixel: a spline for one region, a sampled grid for a re-layout.
SmoothMap = ThinPlate | GridMap

# Jacobians whose determinant is smaller than this (in normalised units) are treated as
# singular: the inverse keeps the sign and uses this magnitude instead of dividing by ~0.
MIN_DETERMINANT = 1e-6


def inverse_2x2(matrices: np.ndarray) -> np.ndarray:
    """Closed-form inverse of 2x2 matrices. (..., 2, 2) -> (..., 2, 2)."""
    a, b = matrices[..., 0, 0], matrices[..., 0, 1]
    c, d = matrices[..., 1, 0], matrices[..., 1, 1]
    det = a * d - b * c
    det = np.where(np.abs(det) < MIN_DETERMINANT, np.where(det < 0, -MIN_DETERMINANT, MIN_DETERMINANT), det)
    adjugate = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)
    return adjugate / det[..., None, None]


def local_affines(
    keypoints_src: np.ndarray,
    jacobians_src: np.ndarray,
    keypoints_tgt: np.ndarray,
    jacobians_tgt: np.ndarray,
) -> np.ndarray:
    """Keypoints and Jacobians of both masks -> the K + 1 pulling motions, identity first.

    keypoints_*: (K, 2) normalised x, y. jacobians_*: (K, 2, 2). Returns (K + 1, 2, 3).
    """
    linear = jacobians_src @ inverse_2x2(jacobians_tgt)  # (K, 2, 2)
    offset = keypoints_src - np.einsum("kij,kj->ki", linear, keypoints_tgt)  # (K, 2)
    motions = np.concatenate([linear, offset[:, :, None]], axis=2)  # (K, 2, 3)
    identity = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    return np.concatenate([identity, motions], axis=0)


def compose_affines(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The pulling motions that apply `inner`, then `outer`: z -> outer(inner(z)).
    outer (2, 3), inner (M, 2, 3) -> (M, 2, 3)."""
    linear = outer[:, :2] @ inner[..., :2]
    shift = np.einsum("ij,mj->mi", outer[:, :2], inner[..., 2]) + outer[:, 2]
    return np.concatenate([linear, shift[..., None]], axis=-1)


def refined_motions(
    prior: np.ndarray,
    keypoints_aligned: np.ndarray,
    jacobians_aligned: np.ndarray,
    keypoints_tgt: np.ndarray,
    jacobians_tgt: np.ndarray,
) -> np.ndarray:
    """The learned SIM-Net's motions (engine/simnet/model.py): the identity, the prior (2, 3),
    and the prior composed with the local affines between the aligned exemplar mask's keypoints
    and the target's ((K, 2) and (K, 2, 2) each). Returns (K + 2, 2, 3)."""
    residual = local_affines(keypoints_aligned, jacobians_aligned, keypoints_tgt, jacobians_tgt)
    return np.concatenate([residual[:1], compose_affines(prior, residual)], axis=0)


def pixels_to_normalised(height: int, width: int) -> np.ndarray:
    """The (3, 3) homogeneous matrix taking pixel coordinates to normalised ones."""
    return np.array(
        [[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0.0, 0.0, 1.0]]
    )


def points_to_normalised(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel points (..., 2) -> normalised points (..., 2)."""
    return (2.0 * points + 1.0) / np.array([width, height]) - 1.0


def points_to_pixels(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised points (..., 2) -> pixel points (..., 2)."""
    return ((points + 1.0) * np.array([width, height]) - 1.0) / 2.0


def _homogeneous(affines: np.ndarray) -> np.ndarray:
    bottom = np.broadcast_to(np.array([0.0, 0.0, 1.0]), affines.shape[:-2] + (1, 3))
    return np.concatenate([affines, bottom], axis=-2)


def normalised_to_pixel_affines(affines: np.ndarray, height: int, width: int) -> np.ndarray:
    """Re-express motions (..., 2, 3) from normalised to pixel coordinates of an image of
    `height` x `width` (both the target and the exemplar have that size)."""
    to_norm = pixels_to_normalised(height, width)
    return (np.linalg.inv(to_norm) @ _homogeneous(affines) @ to_norm)[..., :2, :]


def pixel_to_normalised_affines(affines: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of `normalised_to_pixel_affines`. (..., 2, 3) -> (..., 2, 3)."""
    to_norm = pixels_to_normalised(height, width)
    return (to_norm @ _homogeneous(affines) @ np.linalg.inv(to_norm))[..., :2, :]


@dataclass(frozen=True)
class RegionMotion:
    """What a model says about one region.

    affines: (M, 2, 3) normalised pulling motions (see engine.motion); motion 0 is the identity.
    weights: (M, h, w) float32 per-pixel weights at a working resolution, summing to 1 over M.
    box: (x0, y0, x1, y1) in full-resolution pixel edges: the part of the image that the weight
        grid spans (the whole image for SIM-Net's 256x256 grid).
    keypoints_src, keypoints_tgt: (K, 2) normalised, for display only.
    colour_matrix: optional (3, 4) RGB affine applied to the blended region (texture guidance's
        statistics alignment); luma_offset: optional (h, w) luminance offset on the weight grid
        (its seam correction). With either, the region is clamped to its exemplar pixels' range.
    field: optional smooth map (a SmoothMap, pixels) that motion FIELD_SLOT is instead of its
        affine, which then holds the map's affine part (a non-rigid reshape, engine.reshape).
    """

    affines: np.ndarray
    weights: np.ndarray
    box: tuple[float, float, float, float]
    keypoints_src: np.ndarray
    keypoints_tgt: np.ndarray
    colour_matrix: np.ndarray | None = None
    luma_offset: np.ndarray | None = None
    field: SmoothMap | None = None


def carried_by_layout(motion: RegionMotion) -> bool:
    """Whether a region is carried by a re-layout's map (engine.register, sampled as a GridMap),
    which moves it with its neighbours, rather than by its own spline or affines."""
    return isinstance(motion.field, GridMap)


# The motion a RegionMotion's field stands for.
FIELD_SLOT = 1

# The motion that leaves every point where it is (the same matrix in pixels and normalised).
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

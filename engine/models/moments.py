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
box (at most engine.masks.GRID_SIDE cells on its long side). Target pixels that the winner pulls from outside the
exemplar region (the place a figure left, a part that grew) are the composition's to fill
(engine.compose, engine.fill), as for every model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..masks import region_grid
from ..motion import (
    IDENTITY,
    RegionMotion,
    pixel_to_normalised_affines,
    points_to_normalised,
)
from .alignment import align

KEYPOINT_ANGLES = 8


class MomentsModel:
    name = "moments"
    description = "training-free baseline: affine motions from mask moments and contour points"

    def region_motion(
        self, exemplar: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray
    ) -> RegionMotion:
        """exemplar (H, W, C) float32 and one region's masks (H, W) bool -> its motion."""
        return moments_motion(exemplar, source_mask, target_mask)

    def region_motions(
        self,
        exemplar: np.ndarray,
        exemplar_labels: np.ndarray,
        target_labels: np.ndarray,
        ids: Sequence[int],
        progress: Callable[[float], None] | None = None,
    ) -> list[RegionMotion]:
        """Each region of `ids` on its own (label maps (H, W)); progress before each."""
        motions = []
        for done, region in enumerate(ids):
            if progress is not None:
                progress(done / len(ids))
            motions.append(moments_motion(exemplar, exemplar_labels == region, target_labels == region))
        return motions


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

"""The learned SIM-Net: exported graphs (ONNX Runtime) turn each region pair into motions.

Per batch of regions (all of an edit's regions at once, in chunks):
1. The baseline's alignment of each region pair (engine.models.alignment.align, at full
   resolution) is the prior that the networks refine; the exemplar and each region's masks are
   resized (area) to the working size S.
2. G_KP gives keypoints and Jacobians of the exemplar mask pulled by the prior and of the target
   mask; the K + 2 motions (identity, prior, prior refined at each keypoint) follow in numpy
   (engine.motion.refined_motions, the same formula as in the graph).
3. G_A with texture guidance gives per-pixel weights over the motions, a colour matrix and a
   seam offset map (see engine/simnet/texture_guidance.py).
4. Stay or move: when leaving the region in place fits the target map at least as well as the
   network's own predicted mask does, the region keeps the identity wherever the target overlaps
   its old place (the baseline's test; an undertrained G_A otherwise blends small shifts into
   large regions that barely changed).
Vacated areas (where no weighted motion lands inside the exemplar region) are the composition's
to fill (engine.compose, engine.fill), as for every model; the transport warps and blends the
motions at full resolution (engine.blend).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..io.pixels import rgb_channels
from ..masks import region_grid
from ..motion import (
    IDENTITY,
    RegionMotion,
    pixel_to_normalised_affines,
    refined_motions,
)
from ..runtime.backend import Backend
from .alignment import STAY_MARGIN, align

# Regions per graph call: bounds the transport graph's memory (about 8 MB per region at S=128).
CHUNK = 16
# Shares of a cell below this are dropped from the blend (see `sparse`).
KEEP_WEIGHT = 0.05


class LearnedModel:
    def __init__(self, name: str, folder: Path, device: str = "auto", backend: Backend | None = None):
        self.name = name
        self.folder = Path(folder)
        self.device = device
        self._backend = backend
        self.description = self.describe(self.folder)

    @staticmethod
    def describe(folder: Path) -> str:
        """One line for a model list that already names it (by its folder)."""
        return "learned SIM-Net"

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from ..runtime.sessions import OnnxBackend

            self._backend = OnnxBackend(self.folder, self.device)
        return self._backend

    def region_motion(self, exemplar: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray) -> RegionMotion:
        """exemplar (H, W, C) float32 and one region's masks (H, W) bool -> its motion."""
        if np.array_equal(source_mask, target_mask):
            return _staying(source_mask.shape)
        return self._network_motions(exemplar, self._work_exemplar(exemplar), [(source_mask, target_mask)])[0]

    def region_motions(
        self,
        exemplar: np.ndarray,
        exemplar_labels: np.ndarray,
        target_labels: np.ndarray,
        ids: Sequence[int],
        progress: Callable[[float], None] | None = None,
    ) -> list[RegionMotion]:
        """The motion of every region id in `ids` (label maps (H, W)), with batched graph calls;
        the full-resolution masks are made one chunk at a time, not all at once.

        A region whose mask the edit left exactly as it was stays put without asking the
        networks: with equal masks every local affine is the identity and texture guidance has
        no moved edge, so the graphs could only return the identity at a cost."""
        motions, changed = {}, []
        for region in ids:
            if np.array_equal(exemplar_labels == region, target_labels == region):
                motions[region] = _staying(exemplar_labels.shape)
            else:
                changed.append(region)
        small = self._work_exemplar(exemplar) if changed else None
        for start in range(0, len(changed), CHUNK):
            chunk = changed[start : start + CHUNK]
            pairs = [(exemplar_labels == region, target_labels == region) for region in chunk]
            motions.update(zip(chunk, self._network_motions(exemplar, small, pairs)))
            if progress is not None:
                progress((start + len(chunk)) / len(changed))
        return [motions[region] for region in ids]

    def _work_exemplar(self, exemplar: np.ndarray) -> np.ndarray:
        """The exemplar as the transport graph takes it: (1, 3, S, S) float32 RGB."""
        s = self.backend.work_size
        small = _rgb(cv2.resize(exemplar, (s, s), interpolation=cv2.INTER_AREA).reshape(s, s, -1))
        return np.ascontiguousarray(small.transpose(2, 0, 1))[None]

    def _network_motions(self, exemplar, small, chunk):
        """Motions of up to CHUNK changed region pairs (full-resolution bool masks), in one call
        of each graph. small: the exemplar from `_work_exemplar`."""
        backend = self.backend
        s, n = backend.work_size, len(chunk)
        height, width = exemplar.shape[:2]
        priors = np.stack([pixel_to_normalised_affines(align(a, b).primary, height, width) for a, b in chunk])  # (n, 2, 3)
        src = np.stack([_work_mask(a, s) for a, _ in chunk])[:, None]  # (n, 1, S, S)
        tgt = np.stack([_work_mask(b, s) for _, b in chunk])[:, None]
        graph_priors = priors.astype(np.float32)
        kp, jac = backend.keypoints(np.concatenate([src, tgt]), np.concatenate([graph_priors, np.broadcast_to(IDENTITY, priors.shape).astype(np.float32)]))
        weights, predicted, matrices, offsets = backend.transport(
            np.repeat(small, n, axis=0), src, tgt, graph_priors, kp[:n], jac[:n], kp[n:], jac[n:]
        )
        kp, jac = kp.astype(np.float64), jac.astype(np.float64)
        motions = []
        for i, (source_mask, target_mask) in enumerate(chunk):
            affines = refined_motions(priors[i], kp[i], jac[i], kp[n + i], jac[n + i])
            chosen = stay_where_it_stays(weights[i], src[i, 0], tgt[i, 0], predicted[i, 0])
            kp_src = kp[i] @ priors[i][:, :2].T + priors[i][:, 2]  # the aligned keypoints, in the exemplar
            motions.append(
                _on_target_grid(source_mask, target_mask, affines, chosen, kp_src, kp[n + i], matrices[i], offsets[i, 0])
            )
        return motions



def _iou(a: np.ndarray, b: np.ndarray) -> float:
    overlap = np.minimum(a, b).sum()
    return float(overlap / max(np.maximum(a, b).sum(), 1e-6))


def stay_where_it_stays(weights, source, target, predicted):
    """The baseline's stay-or-move test on the network's own answer: when the region left in
    place explains the target at least as well as the network's predicted mask does (IoU, within
    STAY_MARGIN), the region stays: the identity wherever the target overlaps the region's old
    place; the network's motions only where it grew. weights (M, S, S), masks (S, S) -> (M, S, S)."""
    if _iou(source, target) + STAY_MARGIN < _iou(predicted, target):
        return weights
    kept = (source > 0.5) & (target > 0.5)
    weights = weights.copy()
    weights[:, kept] = 0.0
    weights[0, kept] = 1.0
    return weights


def _staying(shape) -> RegionMotion:
    height, width = shape
    return RegionMotion(
        affines=np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]),
        weights=np.ones((1, 1, 1), np.float32),
        box=(0.0, 0.0, float(width), float(height)),
        keypoints_src=np.zeros((0, 2)),
        keypoints_tgt=np.zeros((0, 2)),
    )


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """(S, S, C) -> (S, S, 3) float32 in [0, 1]: grey repeated, alpha dropped."""
    return np.clip(rgb_channels(pixels), 0, 1).astype(np.float32)


def _work_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A full-resolution bool mask as coverage (S, S) float32. Averaged as 16-bit levels (to
    1.5e-5): a float copy of a large mask costs more than the averaging."""
    levels = np.asarray(mask, bool).view(np.uint8) * np.uint16(65535)
    small = cv2.resize(levels, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size)
    return small.astype(np.float32) / np.float32(65535)


def on_region_grid(maps: np.ndarray, grid_box, shape, height: int, width: int) -> np.ndarray:
    """Maps (M, S, S) over the whole image (height x width) resampled bilinearly at the cells of
    a region's grid (engine.masks.region_grid: extent `grid_box`, `shape` (h, w))
    -> (M, h, w) float32."""
    s, (h, w) = maps.shape[-1], shape
    gx0, gy0, gx1, gy1 = grid_box
    cell_w, cell_h = (gx1 - gx0) / w, (gy1 - gy0) / h
    # working-grid coordinate of a region-grid cell centre: (x + 0.5) * S / width - 0.5
    affine = np.array([
        [cell_w * s / width, 0.0, (gx0 + 0.5 * cell_w) * s / width - 0.5],
        [0.0, cell_h * s / height, (gy0 + 0.5 * cell_h) * s / height - 0.5],
    ])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return np.stack([
        cv2.warpAffine(np.ascontiguousarray(m, np.float32), affine, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).reshape(h, w)
        for m in maps
    ])


def sparse(weights: np.ndarray) -> np.ndarray:
    """Per-cell weights (M, h, w) without the motions under KEEP_WEIGHT, renormalised: each
    motion is then warped only where it matters (a 1% share changes no pixel visibly)."""
    kept = np.where(weights >= KEEP_WEIGHT, weights, 0.0).astype(np.float32)
    total = kept.sum(axis=0, keepdims=True)
    empty = total[0] <= 0  # no motion reaches the share (never with M < 1 / KEEP_WEIGHT)
    if empty.any():
        kept[:, empty] = weights[:, empty]
        total = kept.sum(axis=0, keepdims=True)
    return kept / total


def _on_target_grid(source_mask, target_mask, affines, weights, kp_src, kp_tgt, matrix, offset) -> RegionMotion:
    """The graph's motions on the baseline's grid over the target region's box (finer than the
    working size: a sliver the prior misses at the region's edge is a few cells there, not a
    fraction of one)."""
    height, width = source_mask.shape
    grid_box, _, shape, _ = region_grid(target_mask)
    return RegionMotion(
        affines=np.asarray(affines),
        weights=sparse(on_region_grid(weights, grid_box, shape, height, width)),
        box=grid_box,
        keypoints_src=kp_src.astype(np.float64),
        keypoints_tgt=kp_tgt.astype(np.float64),
        colour_matrix=matrix.astype(np.float32),
        luma_offset=on_region_grid(offset[None], grid_box, shape, height, width)[0].astype(np.float32),
    )

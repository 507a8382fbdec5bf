"""Full-resolution region transport and compositing, as SIM-Net builds its output.

For each region of the target map a model supplies a `RegionMotion`: M affine motions that pull
target pixels back into the exemplar, and per-pixel weights over those motions at a working
resolution. The region's output is the weighted blend of the M warped copies of the exemplar:

    out(z) = sum_m w_m(z) v_m(z) warp_m(z) / sum_m w_m(z) v_m(z),   v_m(z) = mask_r(A_m z) + eps

where v_m is the exemplar region's own mask (less its RIM_WIDTH-pixel rim) pulled by the same
motion. It keeps each region made
of that region's pixels (a motion whose sample lands in another region loses its vote) and the
small eps falls back to the plain weighted blend where no motion lands inside the region, so
nothing is ever black. Regions are laid over each other with their target masks, feathered by a
sub-pixel Gaussian so edges are anti-aliased: the feathered masks sum to one, so there is no halo.

Everything is done at the exemplar's native size, inside each region's bounding box, one band of
BAND_ROWS rows at a time (bands on as many threads as there are cores). Motions are affine, so
OpenCV's warpAffine evaluates them exactly at every output pixel (no field is materialised or
upsampled); bench/warp.py measures it against remap, numpy and an ONNX graph. On a GPU the
blend can run as an ONNX graph instead (engine/runtime/blend_graph.py), where measured faster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .masks import bounding_box, feathered_mask, region_interior
from .motion import FIELD_SLOT, RegionMotion, SmoothMap, normalised_to_pixel_affines
from .threads import thread_count

# Weight of a motion whose sample falls outside its region, relative to one inside (see above).
OUTSIDE_REGION_WEIGHT = 1e-3
# Sigma, in output pixels, of the Gaussian that anti-aliases region edges.
EDGE_FEATHER = 0.7
# Motions whose weight stays below this everywhere in a region's box are skipped.
NEGLIGIBLE_WEIGHT = 1e-3
# A region is blended, guided and laid in one band of this many rows at a time: no accumulator
# the size of the image is ever held (a background region spans all of it), and each motion is
# warped only over its support in the band (often a diagonal strip of its bounding box).
BAND_ROWS = 128


@dataclass(frozen=True)
class Composite:
    """The result (H, W, C) and, when asked for, which motion dominates each pixel (H, W) int16
    (-1 where no region was drawn)."""

    pixels: np.ndarray
    dominant_motion: np.ndarray | None


def warp_into_box(
    image: np.ndarray,
    pixel_affine: np.ndarray,
    box: tuple[int, int, int, int],
    border: int,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Sample `image` (H, W[, C]) at pixel_affine @ z for every pixel z of `box`, bilinearly
    (or as `interpolation` says).

    pixel_affine: (2, 3) pulling motion in pixel coordinates. Returns the box's (h, w[, C]).
    An exact identity is a plain copy.
    """
    x0, y0, x1, y1 = box
    affine = pixel_affine.copy()
    affine[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)
    if np.abs(affine - [[1, 0, x0], [0, 1, y0]]).max() <= 1e-9:
        return image[y0:y1, x0:x1].copy()
    warped = cv2.warpAffine(
        image,
        affine,
        (x1 - x0, y1 - y0),
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )
    return warped.reshape((y1 - y0, x1 - x0) + image.shape[2:])


class FieldPull:
    """A smooth map (engine.motion.SmoothMap) as one of a prepared motion's pulls. Its remap maps are
    evaluated exactly at every pixel, once per band of rows and thread: the blend, the coverage
    and the provenance of a band all ask for them."""

    def __init__(self, field: SmoothMap):
        self.field = field
        self._last = threading.local()

    def maps(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) (box h, box w) float32 for a box of pixels."""
        last = getattr(self._last, "box", None)
        if last is None or not (last[0] <= box[0] and last[1] <= box[1] and box[2] <= last[2] and box[3] <= last[3]):
            self._last.box, self._last.maps = box, self.field.maps(box)
            last = box
        rows, cols = slice(box[1] - last[1], box[3] - last[1]), slice(box[0] - last[0], box[2] - last[0])
        map_x, map_y = self._last.maps
        return map_x[rows, cols], map_y[rows, cols]

    def points(self, points: np.ndarray) -> np.ndarray:
        """Pixel points (N, 2) -> their pulled positions (N, 2)."""
        return self.field.pull(points)


# A prepared motion's pull: a (2, 3) pixel affine, or a smooth map.
Pull = np.ndarray | FieldPull


def sample_pulled(
    image: np.ndarray, pull: Pull, box: tuple[int, int, int, int], border: int, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """`warp_into_box` for either kind of pull. Returns the box's (h, w[, C])."""
    if not isinstance(pull, FieldPull):
        return warp_into_box(image, pull, box, border, interpolation)
    map_x, map_y = pull.maps(box)
    warped = cv2.remap(image, map_x, map_y, interpolation, borderMode=border)
    return warped.reshape(map_x.shape + image.shape[2:])


def motion_pulls(pixel_affines: np.ndarray, field: SmoothMap | None) -> list[Pull]:
    """A motion's pulls: its pixel affines (M, 2, 3), with slot FIELD_SLOT the smooth `field`
    instead where the motion has one (RegionMotion.field)."""
    return [FieldPull(field) if field is not None and m == FIELD_SLOT else affine for m, affine in enumerate(pixel_affines)]


def pull_points(pull: Pull, points: np.ndarray) -> np.ndarray:
    """Pixel points (N, 2) -> where `pull` samples them (N, 2)."""
    if isinstance(pull, FieldPull):
        return pull.points(points)
    return points @ pull[:, :2].T + pull[:, 2]


def upsample_weights(
    weights: np.ndarray, grid_box: Sequence[float], box: tuple[int, int, int, int]
) -> np.ndarray:
    """Bilinearly resample a working-resolution weight grid at the full-resolution pixels of
    `box`. weights (h, w) spans `grid_box` (x0, y0, x1, y1) in full-resolution pixel edges.
    Returns (box h, box w) float32; values outside the grid repeat its edge."""
    gx0, gy0, gx1, gy1 = grid_box
    h, w = weights.shape
    sx, sy = w / (gx1 - gx0), h / (gy1 - gy0)
    # grid coordinate of full-resolution pixel centre p: (p + 0.5 - g0) * s - 0.5
    affine = np.array(
        [[sx, 0.0, (box[0] + 0.5 - gx0) * sx - 0.5], [0.0, sy, (box[1] + 0.5 - gy0) * sy - 0.5]]
    )
    return cv2.warpAffine(
        weights.astype(np.float32),
        affine,
        (box[2] - box[0], box[3] - box[1]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def weight_support(
    weights: np.ndarray, grid_box: Sequence[float], box: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    """The part of `box` (full-resolution pixels) where the bilinearly upsampled weight grid
    (h, w), spanning `grid_box`, can be non-zero: its support grown by one cell, and to the box's
    edge where the support touches the grid's edge (upsampling repeats edge values outward).
    None if empty."""
    cells = bounding_box(weights > 0)
    if cells is None:
        return None
    gx0, gy0, gx1, gy1 = grid_box
    h, w = weights.shape
    cell_w, cell_h = (gx1 - gx0) / w, (gy1 - gy0) / h
    x0 = box[0] if cells[0] == 0 else max(box[0], int(np.floor(gx0 + (cells[0] - 1) * cell_w)))
    y0 = box[1] if cells[1] == 0 else max(box[1], int(np.floor(gy0 + (cells[1] - 1) * cell_h)))
    x1 = box[2] if cells[2] == w else min(box[2], int(np.ceil(gx0 + (cells[2] + 1) * cell_w)))
    y1 = box[3] if cells[3] == h else min(box[3], int(np.ceil(gy0 + (cells[3] + 1) * cell_h)))
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def band_support(
    weights: np.ndarray, grid_box: Sequence[float], band: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    """`weight_support` of the grid rows whose bilinear footprint reaches the pixel rows of
    `band` (a box of full-resolution pixels): where in the band the upsampled weights (h, w),
    spanning grid_box, can be non-zero. None if nowhere."""
    gx0, gy0, gx1, gy1 = grid_box
    h = weights.shape[0]
    cell_h = (gy1 - gy0) / h
    r0 = max(0, int(np.floor((band[1] - gy0) / cell_h)) - 1)
    r1 = min(h, int(np.ceil((band[3] - gy0) / cell_h)) + 1)
    if r0 >= r1:
        return None
    return weight_support(weights[r0:r1], (gx0, gy0 + r0 * cell_h, gx1, gy0 + r1 * cell_h), band)


@dataclass(frozen=True)
class PreparedMotion:
    """A region's motion ready to blend band by band: pixel affines with equal ones merged
    (`merged_motions`), each motion's pull (its affine, or the motion's smooth field), their
    weight grids, the index reported for each (explain's dominant motion), and the colour bounds
    of texture guidance (`region_range`; None when unguided)."""

    affines: np.ndarray
    pulls: list[Pull]
    weights: np.ndarray
    indices: list[int]
    bounds: tuple | None


def prepare_motion(exemplar: np.ndarray, motion: RegionMotion, region_mask: np.ndarray) -> PreparedMotion:
    """exemplar (H, W, C), the region's motion and its exemplar mask (H, W) bool."""
    height, width = exemplar.shape[:2]
    pixel_affines = normalised_to_pixel_affines(motion.affines, height, width)
    if motion.field is None:
        affines, weights, indices = merged_motions(pixel_affines, motion.weights)
        pulls: list[Pull] = list(affines)
    else:  # a field is never merged with an affine that happens to equal its affine part
        affines, weights, indices = pixel_affines, motion.weights, list(range(len(pixel_affines)))
        pulls = motion_pulls(affines, motion.field)
    bounds = None
    if motion.colour_matrix is not None or motion.luma_offset is not None:
        bounds = region_range(exemplar[:, :, : 3 if exemplar.shape[2] >= 3 else 1], region_mask)
    return PreparedMotion(affines, pulls, weights, indices, bounds)


def transport_band(
    exemplar: np.ndarray,
    source_mask: np.ndarray,
    motion: RegionMotion,
    prepared: PreparedMotion,
    band: tuple[int, int, int, int],
    want_dominant: bool = False,
    placed=None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One region's transported pixels inside `band`, a box of pixel rows (see the module
    docstring): the blend of its motions, then texture guidance.

    exemplar: (H, W, C) float32. source_mask: (H, W) float32, where the region's pixels may be
    sampled in the exemplar (see `region_interior`). prepared: from `prepare_motion`. placed:
    the region on a blend graph's device (engine.runtime.blend_graph), which then blends instead of
    OpenCV (it reports no dominant motion).
    Returns (band h, band w, C) float32 and, if asked, the index of the dominant motion per pixel.
    """
    if placed is not None:
        colour, dominant = placed.blend(prepared.affines, prepared.weights, motion.box, band), None
    else:
        colour, dominant = blend_band(
            exemplar, source_mask, prepared.pulls, prepared.weights, prepared.indices, motion.box, band, want_dominant
        )
    if prepared.bounds is not None:
        guide_texture(colour, motion, band, prepared.bounds)
    return colour, dominant


def blend_band(exemplar, source_mask, pulls, weight_grids, indices, grid_box, band, want_dominant):
    """The weighted blend of the motions' copies over `band` (see the module docstring).
    pulls: M pixel affines (2, 3) or `FieldPull`s, weight_grids (M, h, w) spanning grid_box, indices (M,) the
    number reported for each motion -> pixels (band h, band w, C), dominant motion or None."""
    band_h, band_w = band[3] - band[1], band[2] - band[0]
    colour = np.zeros((band_h, band_w, exemplar.shape[2]), np.float32)
    total = np.zeros((band_h, band_w), np.float32)
    best = np.full((band_h, band_w), -1.0, np.float32) if want_dominant else None
    dominant = np.zeros((band_h, band_w), np.int16) if want_dominant else None
    for pull, weights, index in zip(pulls, weight_grids, indices):
        part = band_support(weights, grid_box, band)
        if part is None:
            continue
        weight = upsample_weights(weights, grid_box, part)
        if weight.max() < NEGLIGIBLE_WEIGHT:
            continue
        inside = sample_pulled(source_mask, pull, part, cv2.BORDER_CONSTANT)
        weight *= inside + OUTSIDE_REGION_WEIGHT
        warped = sample_pulled(exemplar, pull, part, cv2.BORDER_REFLECT_101)
        np.multiply(warped, weight[:, :, None], out=warped)
        rows, cols = slice(part[1] - band[1], part[3] - band[1]), slice(part[0] - band[0], part[2] - band[0])
        colour[rows, cols] += warped
        total[rows, cols] += weight
        if want_dominant:
            best_part, dominant_part = best[rows, cols], dominant[rows, cols]
            better = weight > best_part
            best_part[better] = weight[better]
            dominant_part[better] = index
    # Weights sum to one over M, so total > OUTSIDE_REGION_WEIGHT * (nearly 1) everywhere.
    colour /= np.maximum(total, 1e-12, out=total)[:, :, None]
    return colour, dominant


def merged_motions(pixel_affines: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Motions equal to an earlier one (within 1e-9 pixels) folded into it, their weights
    added: the blend is the same and the copy is warped once (a learned region that stays has
    its prior equal to the identity). pixel_affines (M, 2, 3), weights (M, h, w) ->
    (N, 2, 3), (N, h, w) and the index in the input of each motion kept."""
    kept: list[int] = []
    summed: list[np.ndarray] = []
    for index, affine in enumerate(pixel_affines):
        for slot, first in enumerate(kept):
            if np.abs(affine - pixel_affines[first]).max() <= 1e-9:
                summed[slot] = summed[slot] + weights[index]
                break
        else:
            kept.append(index)
            summed.append(weights[index])
    return pixel_affines[kept], np.stack(summed), kept


def guide_texture(colour: np.ndarray, motion: RegionMotion, band, bounds) -> None:
    """Texture guidance at full resolution (see engine/simnet/texture_guidance.py), in place:
    the colour matrix on RGB, the upsampled luminance offset on every colour channel (alpha
    untouched), then a clamp to `bounds`, the range of the region's own exemplar pixels (from
    `region_range`), or to the pixel's own unguided value, which came from the exemplar too:
    no new colour appears. colour (h, w, C) covers `band`."""
    channels = 3 if colour.shape[2] >= 3 else 1
    before = colour[:, :, :channels]
    unguided = np.ascontiguousarray(before)
    if motion.colour_matrix is not None and channels == 3:
        guided = cv2.transform(unguided, motion.colour_matrix.astype(np.float32)).reshape(before.shape)
    else:
        guided = unguided.copy()
    if motion.luma_offset is not None:
        guided += upsample_weights(motion.luma_offset, motion.box, band)[:, :, None]
    low, high = bounds
    if low is not None:  # never beyond both the region's range and the pixel's own value
        if before.shape[0] > 1:
            # OpenCV's per-channel scalar min/max do the clamp in one threaded pass each.
            ceiling = cv2.max(unguided, tuple(float(v) for v in high)).reshape(before.shape)
            floor = cv2.min(unguided, tuple(float(v) for v in low)).reshape(before.shape)
            guided = cv2.max(cv2.min(guided, ceiling), floor).reshape(before.shape)
        else:  # OpenCV reads a one-row (1, w, C) array as w pixels of one channel
            guided = np.clip(guided, np.minimum(unguided, low), np.maximum(unguided, high))
    before[...] = guided


def region_range(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-channel min and max (C,) of image (H, W, C) over mask (H, W) bool, without copying
    the region's pixels out (a band of rows at a time); (None, None) for an empty mask."""
    box = bounding_box(mask)
    if box is None:
        return None, None
    x0, y0, x1, y1 = box
    low = np.full(image.shape[2], np.inf, np.float32)
    high = np.full(image.shape[2], -np.inf, np.float32)
    for top in range(y0, y1, BAND_ROWS):
        rows = slice(top, min(top + BAND_ROWS, y1))
        inside = mask[rows, x0:x1].astype(np.uint8)
        if not inside.any():
            continue
        for c in range(image.shape[2]):
            small, large = cv2.minMaxLoc(np.ascontiguousarray(image[rows, x0:x1, c]), inside)[:2]
            low[c], high[c] = min(low[c], small), max(high[c], large)
    return low, high


def composite(
    exemplar: np.ndarray,
    exemplar_labels: np.ndarray,
    target_labels: np.ndarray,
    motions: dict[int, RegionMotion],
    feather: float = EDGE_FEATHER,
    want_dominant: bool = False,
    on_progress: Callable[[float], None] | None = None,
    alphas: dict[int, np.ndarray] | None = None,
    graph=None,
) -> Composite:
    """Transport every region into its place in the target map and lay them together.

    exemplar: (H, W, C) float32; exemplar_labels, target_labels: (H, W) int; motions: one per id
    of the target map. Returns a `Composite` with pixels (H, W, C) float32. `on_progress(fraction)`
    is called after each band of rows of each region. `alphas` may give regions their own coverage
    (H, W) in [0, 1] instead of their feathered target mask (a soft selection); together the
    coverages must still sum to one. `graph`: an engine.runtime.blend_graph.BlendGraph to blend on
    (not used when the dominant motion is wanted), or None for OpenCV.
    """
    result = np.zeros_like(exemplar, dtype=np.float32)
    dominant = np.full(exemplar.shape[:2], -1, np.int16) if want_dominant else None
    owner_alpha = np.zeros(exemplar.shape[:2], np.float32) if want_dominant else None
    margin = int(np.ceil(4 * feather)) + 1 if feather > 0 else 0
    ids = sorted(motions)
    alphas = alphas or {}
    graph = None if want_dominant else graph
    placed_exemplar = graph.place_exemplar(exemplar) if graph is not None else None

    def lay_band(region, target_mask, source_mask, prepared, band, placed):
        """Transport one band of a region and lay it into the result (bands own their rows)."""
        pixels, band_dominant = transport_band(exemplar, source_mask, motions[region], prepared, band, want_dominant, placed)
        x0, y0, x1, y1 = band
        if region in alphas:
            alpha = alphas[region][y0:y1, x0:x1].astype(np.float32)
        else:
            alpha = feathered_mask(target_mask, band, feather)
        result[y0:y1, x0:x1] += np.multiply(pixels, alpha[:, :, None], out=pixels)
        if want_dominant:
            owns = alpha > owner_alpha[y0:y1, x0:x1]
            owner_alpha[y0:y1, x0:x1][owns] = alpha[owns]
            dominant[y0:y1, x0:x1][owns] = band_dominant[owns]

    # Bands in threads: OpenCV and numpy release the GIL, and much of the per-band work
    # (numpy's products and sums) is single-threaded otherwise.
    with ThreadPoolExecutor(max_workers=thread_count()) as pool:
        for done, region in enumerate(ids):
            target_mask = target_labels == region
            box = bounding_box(alphas[region] > 0, 0) if region in alphas else bounding_box(target_mask, margin)
            if box is None:
                continue
            region_mask = exemplar_labels == region
            source_mask = region_interior(region_mask)
            prepared = prepare_motion(exemplar, motions[region], region_mask)
            # the blend graph takes affines only: a region with a smooth field blends here
            placed = graph.region(placed_exemplar, source_mask) if graph is not None and motions[region].field is None else None
            bands = [(box[0], top, box[2], min(top + BAND_ROWS, box[3])) for top in range(box[1], box[3], BAND_ROWS)]
            jobs = [pool.submit(lay_band, region, target_mask, source_mask, prepared, band, placed) for band in bands]
            try:
                for finished, job in enumerate(jobs):
                    job.result()
                    if on_progress is not None:
                        on_progress((done + (finished + 1) / len(jobs)) / len(ids))
            except BaseException:  # a failure or a cancel from on_progress: drop the bands not started
                for job in jobs:
                    job.cancel()
                raise
    return Composite(result, dominant)

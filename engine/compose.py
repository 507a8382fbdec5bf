"""Layered composition: what the edit changes changes, and nothing else does.

Given each target region's motion (from any model), the result is built in layers:

1. Staying regions. A region stays when it only lost area to regions that moved over it, when
   its motion is the identity where its target overlaps its old place, or when its motion does
   not explain what it gained (`moving_regions`). Where a staying region's target pixel is its
   own exemplar pixel, that pixel is copied as it is.
   A staying region that gained area without being revealed *grows*: its own pixels stay, and
   its motion is laid over what it gained (a neighbour giving way as a layout changes).
   A region carried by a re-layout's map (engine.reshape, which checked that the map explains
   its new outline) moves with its neighbours, unless it is revealed by a deleted region.
2. Moving regions are transported (engine.blend: their motions, warped and blended at full
   resolution) and laid over, with their edges anti-aliased outward by EDGE_FEATHER. Their
   pixels are warped where their motions land inside their own exemplar region.
3. Vacated pixels, and only those, are synthesised (engine.fill): target pixels of a staying
   region that were some other region's, and target pixels of a moving region that its motions
   cannot pull from its own pixels. Each is made from its own region's exemplar pixels.

The edit zone is the pixels whose label differs between the maps, plus the target and exemplar
pixels of every moving region, grown by `edit_band` pixels. Outside it the result is the
exemplar, bit for bit. A region absent from the target map is never sampled.

Provenance (when asked for) says for every output pixel the exemplar pixel it came from, the
exemplar region of that pixel and how it came (UNCHANGED, WARPED, FILLED); a pixel that mixes
sources (an anti-aliased edge) reports its larger share, and UNCHANGED means bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .blend import (
    BAND_ROWS,
    EDGE_FEATHER,
    FieldPull,
    motion_pulls,
    prepare_motion,
    pull_points,
    sample_pulled,
    transport_band,
    upsample_weights,
)
from .fill import fill_vacated, nearest_pixel
from .masks import bounding_box, feathered_mask, region_box, region_interior
from .motion import RegionMotion, carried_by_layout, normalised_to_pixel_affines
from .replay import SHIFT_STEPS, SolvedEdit, unchanged
from .threads import thread_count

UNCHANGED, WARPED, FILLED = 0, 1, 2
# A moving region's pixel is warped when its motions' weights land this much inside the region.
COVERED = 0.5
# A region stays when the identity holds this share of its weight where target and exemplar meet.
STAY_SHARE = 0.5
# Gained pixels sampled per region to see whether its motion explains them.
MAX_GAIN_SAMPLES = 20_000
# A region that gained area moves only when its motion leaves at most this share of what staying
# leaves unexplained (the share of its target it did not have).
MOVE_GAIN = 0.5
# A region keeps its place when it lost at most this share of its exemplar pixels.
KEEP_LOSS = 0.1
# A region more than this share of whose target is new is never merely revealed.
REVEAL_SHARE = 0.5
# The blending band around the edit, in pixels: at least MIN_BAND, and one per BAND_PER pixels
# of the image's long side (8 px at 4096), so that joins scale with the picture.
MIN_BAND = 4
BAND_PER = 512
# The fill also takes this many pixels of the staying regions around a vacated place (a painted
# map's edge misses an object's outline by a pixel or two): at least MIN_RIM, one per RIM_PER.
MIN_RIM = 2
RIM_PER = 1024


@dataclass(frozen=True)
class Provenance:
    """For every output pixel (H, W): the exemplar coordinate it came from (source_x, source_y
    float32, pixel centres on integers), that pixel's exemplar region (int32) and its kind
    (uint8: UNCHANGED, WARPED, FILLED)."""

    source_x: np.ndarray
    source_y: np.ndarray
    source_region: np.ndarray
    kind: np.ndarray


@dataclass(frozen=True)
class Composition:
    """The result (H, W, C) float32, the kind of every pixel (H, W) uint8, the edit zone
    (H, W) bool, the ids of the regions that moved, and the provenance and the solved edit
    (engine.replay) when asked for."""

    pixels: np.ndarray
    kind: np.ndarray
    edit_zone: np.ndarray
    moving: tuple[int, ...]
    provenance: Provenance | None
    solved: SolvedEdit | None = None


def edit_rim(height: int, width: int) -> int:
    """How far (pixels) the fill reaches past the place a region left, for an image this size."""
    return max(MIN_RIM, int(np.ceil(max(height, width) / RIM_PER)))


def edit_band(height: int, width: int) -> int:
    """Width in pixels of the blending band around the edit for an image of this size."""
    return max(MIN_BAND, int(np.ceil(max(height, width) / BAND_PER)))


def identity_slots(motion: RegionMotion, height: int, width: int) -> np.ndarray:
    """Which of the motion's affines (M,) bool are the identity (to 1e-6 pixels)."""
    pixel = normalised_to_pixel_affines(motion.affines, height, width)
    return np.abs(pixel - np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).max(axis=(1, 2)) <= 1e-6


def moving_regions(
    exemplar_labels: np.ndarray, target_labels: np.ndarray, motions: dict[int, RegionMotion]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ids of the regions that move and of those that stay but grow (all others stay, see
    the module docstring). A growing region keeps its own pixels where they were and lays its
    motion over what it gained (a neighbour that gives way as a layout changes); a staying
    region that gained area because it was revealed has that area filled instead.

    A region whose pixels all keep their label stays. Otherwise it stays when the identity holds
    STAY_SHARE of its motion's weight where its two masks meet, or when its motion does not
    explain the area it gained (it pulls less than COVERED of it from the region's own pixels, or
    explains its whole target not clearly better than staying does), or when it kept its place
    (or lost only to regions that moved over it), is mostly where it was (under REVEAL_SHARE of
    its target is new) and what it gained was left by a region that moved away or was deleted (it is revealed: the
    background behind a figure is not stretched over the gap), or, having gained
    nothing, when most of what it lost went to regions that explain their own gains (it is only
    covered). (H, W) int label maps; one motion per target id."""
    changed_rows, changed_cols = np.nonzero(exemplar_labels != target_labels)
    gained_by = target_labels[changed_rows, changed_cols]
    lost_by = exemplar_labels[changed_rows, changed_cols]
    explains = {}
    target_ids, target_sizes = np.unique(target_labels, return_counts=True)
    sizes = dict(zip(target_ids.tolist(), target_sizes.tolist()))
    for region in np.unique(gained_by):
        if region not in motions:
            continue
        region = int(region)
        pick = np.flatnonzero(gained_by == region)
        gained = pick.size
        pick = pick[:: max(1, pick.size // MAX_GAIN_SAMPLES)]
        points = np.stack([changed_cols[pick], changed_rows[pick]], axis=1).astype(np.float64)
        pulls_gain = _pulled_inside(motions[region], exemplar_labels, region, points) >= COVERED
        # and it must explain the whole target clearly better than staying does (a drifted
        # neighbour covers a little more of itself, a moved figure all of itself)
        everywhere = _target_points(target_labels, region)
        unexplained = 1.0 - _pulled_inside(motions[region], exemplar_labels, region, everywhere)
        explains[region] = pulls_gain and unexplained <= MOVE_GAIN * gained / sizes[region]
    exemplar_ids, exemplar_sizes = np.unique(exemplar_labels, return_counts=True)
    exemplar_size = dict(zip(exemplar_ids.tolist(), exemplar_sizes.tolist()))
    lost_ids, lost_counts = np.unique(lost_by, return_counts=True)
    lost_count = dict(zip(lost_ids.tolist(), lost_counts.tolist()))
    # regions that left pixels behind: deleted, or moved away with a motion that explains it
    top = max(int(exemplar_labels.max()), int(target_labels.max())) + 2
    explained = np.zeros(top, bool)  # explains as a lookup by id
    explained[[region for region, yes in explains.items() if yes]] = True
    left = np.zeros(top, bool)
    deleted = [region for region in lost_count if region not in sizes]
    for region in lost_count:
        left[region] = region not in sizes or explained[region]
    moving, growing = [], []
    for region in sorted(motions):
        lost = lost_by == region
        gained = region in explains
        if not lost.any() and not gained:
            continue  # not one pixel changed label
        taken_by = gained_by[lost]  # the regions now where it was
        revealed = False
        if gained:
            # A region that keeps its place and gains what a departed region left is revealed
            # (the background behind a figure that moved), not stretched over the gap.
            keeps_place = lost_count.get(region, 0) <= KEEP_LOSS * exemplar_size.get(region, 1)
            only_covered = taken_by.size > 0 and explained[taken_by].mean() >= 0.5
            mostly_old = (gained_by == region).sum() < REVEAL_SHARE * sizes[region]
            given_by = lost_by[gained_by == region]
            from_deleted = np.isin(given_by, deleted).mean() >= 0.5  # what a deleted region left is always revealed
            revealed = from_deleted or (mostly_old and (keeps_place or only_covered) and left[given_by].mean() >= 0.5)
            # a region carried by a smooth map (engine.reshape) is reshaped with its neighbours, not
            # left standing in front of a gap: what it gained is its own pixels pulled there
            revealed = revealed and (not carried_by_layout(motions[region]) or from_deleted)
        stays = _identity_share(motions[region], exemplar_labels == region, target_labels == region) >= STAY_SHARE
        if carried_by_layout(motions[region]) and not revealed:
            moving.append(region)  # engine.reshape checked that the map explains its new outline
        elif not stays and gained and explains[region] and not revealed:
            moving.append(region)
        elif not stays and not gained:
            covered = explained[taken_by].mean() if taken_by.size else 1.0
            if covered < 0.5:
                moving.append(region)
        elif gained and not revealed:
            growing.append(region)
    return tuple(moving), tuple(growing)


def _target_points(target_labels: np.ndarray, region: int) -> np.ndarray:
    """About MAX_GAIN_SAMPLES pixel points (N, 2) x, y of a target region, on a regular grid."""
    x0, y0, x1, y1 = region_box(target_labels == region)
    step = max(1, int(np.sqrt((x1 - x0) * (y1 - y0) / MAX_GAIN_SAMPLES)))
    rows, cols = np.nonzero(target_labels[y0:y1:step, x0:x1:step] == region)
    return np.stack([x0 + cols * step, y0 + rows * step], axis=1).astype(np.float64)


def _grid_cells(motion: RegionMotion, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weight-grid cell (rows, cols) of each pixel point (N, 2) x, y."""
    h, w = motion.weights.shape[1:]
    gx0, gy0, gx1, gy1 = motion.box
    cols = np.clip(np.floor((points[:, 0] + 0.5 - gx0) / (gx1 - gx0) * w).astype(np.int64), 0, w - 1)
    rows = np.clip(np.floor((points[:, 1] + 0.5 - gy0) / (gy1 - gy0) * h).astype(np.int64), 0, h - 1)
    return rows, cols


def _pulled_inside(motion: RegionMotion, exemplar_labels: np.ndarray, region: int, points: np.ndarray) -> float:
    """The share of the motion's weight at pixel points (N, 2) that lands on the region's own
    exemplar pixels."""
    height, width = exemplar_labels.shape
    pulls = motion_pulls(normalised_to_pixel_affines(motion.affines, height, width), motion.field)
    rows, cols = _grid_cells(motion, points)
    weights = motion.weights[:, rows, cols]  # (M, N)
    landed = np.zeros_like(weights)
    for m, pull in enumerate(pulls):
        if not weights[m].any():
            continue
        pulled = pull_points(pull, points)
        x, y = np.rint(pulled[:, 0]).astype(np.int64), np.rint(pulled[:, 1]).astype(np.int64)
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        landed[m, inside] = exemplar_labels[y[inside], x[inside]] == region
    return float((weights * landed).sum() / max(weights.sum(), 1e-12))


def _identity_share(motion: RegionMotion, exemplar_mask: np.ndarray, target_mask: np.ndarray) -> float:
    """The identity's share of the motion's weight over the grid cells where both masks meet."""
    height, width = target_mask.shape
    identity = identity_slots(motion, height, width)
    if not identity.any():
        return 0.0
    h, w = motion.weights.shape[1:]
    gx0, gy0, gx1, gy1 = motion.box
    cols = np.clip(np.floor(gx0 + (np.arange(w) + 0.5) * (gx1 - gx0) / w).astype(np.int64), 0, width - 1)
    rows = np.clip(np.floor(gy0 + (np.arange(h) + 0.5) * (gy1 - gy0) / h).astype(np.int64), 0, height - 1)
    meet = (exemplar_mask & target_mask)[rows[:, None], cols[None, :]]
    if not meet.any():
        return 0.0
    share = motion.weights[identity].sum(axis=0) / np.maximum(motion.weights.sum(axis=0), 1e-12)
    return float(share[meet].mean())


def compose(
    exemplar: np.ndarray,
    exemplar_labels: np.ndarray,
    target_labels: np.ndarray,
    motions: dict[int, RegionMotion],
    alphas: dict[int, np.ndarray] | None = None,
    graph=None,
    want_provenance: bool = False,
    on_progress: Callable[[float], None] | None = None,
    want_solved: bool = False,
) -> Composition:
    """Lay every target region into its place (see the module docstring).

    exemplar: (H, W, C) float32; exemplar_labels, target_labels: (H, W) int; motions: one per id
    of the target map. `alphas` may give a region its own coverage (H, W) in [0, 1] instead of
    its feathered target mask (a soft selection). `graph`: an engine.runtime.blend_graph.BlendGraph to
    blend moving regions on, or None for OpenCV. `on_progress(fraction)` after each band.
    `want_solved`: also describe the result as an engine.replay.SolvedEdit, to replay on layers.
    """
    height, width = target_labels.shape
    alphas = alphas or {}
    moving, growing = moving_regions(exemplar_labels, target_labels, motions)
    core = exemplar_labels != target_labels
    for region in moving:
        core |= (target_labels == region) | (exemplar_labels == region)
        if region in alphas:
            core |= alphas[region] > 0
    band = edit_band(height, width)
    zone = cv2.dilate(core.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))).view(bool)
    pixels = exemplar.copy()
    kind = np.zeros((height, width), np.uint8)
    box = bounding_box(zone)
    if box is None:  # nothing changes
        if on_progress is not None:
            on_progress(1.0)
        return Composition(
            pixels,
            kind,
            zone,
            moving,
            _unchanged_provenance(exemplar_labels) if want_provenance else None,
            unchanged(height, width) if want_solved else None,
        )

    layers = _MovingLayers(exemplar, box, want_provenance or want_solved)
    _lay_moving(layers, exemplar, exemplar_labels, target_labels, motions, moving, growing, alphas, graph, on_progress)

    # The staying world under the moving layers: own pixels, or holes of the region now there.
    staying = np.zeros(max(int(target_labels.max()), int(exemplar_labels.max())) + 2, bool)
    staying[[r for r in motions if r not in moving]] = True
    x0, y0, x1, y1 = box
    crop = (slice(y0, y1), slice(x0, x1))
    target, source = target_labels[crop], exemplar_labels[crop]
    in_zone = zone[crop]
    base_label = _base_labels(target, staying, layers.alpha, in_zone)
    own = in_zone & (base_label == source) & staying[np.maximum(source, 0)]
    shows = layers.alpha < 1.0 - 1e-6  # where the staying world is seen at all
    may_fill = in_zone & shows & (base_label >= 0)
    hole_crop = may_fill & ~own
    # Painted maps stop a pixel or two short of an object's outline: the staying pixels that
    # touch the place a region left are filled too, so no rim of the old object stays behind.
    rim = edit_rim(height, width)
    grown = cv2.dilate(hole_crop.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))).view(bool)
    hole_crop = grown & may_fill
    hole_crop |= layers.uncovered  # a moving region's own pixels that its motions cannot reach

    # The known picture around the holes, then the fill (labels: the region each hole becomes).
    context = pixels[crop] * (1.0 - layers.alpha[:, :, None]) + layers.colour
    fill_labels = np.where(layers.uncovered, target, base_label)
    hole = np.zeros((height, width), bool)
    hole[crop] = hole_crop
    labels_full = target_labels.copy()
    labels_full[crop] = np.where(hole_crop, fill_labels, target)
    pixels[crop] = context  # the output buffer holds the fill's context until it is composed
    filled = fill_vacated(pixels, hole, labels_full, exemplar, exemplar_labels)
    base = exemplar[crop].copy()
    base[filled.rows - y0, filled.cols - x0] = filled.colours
    alpha = np.where(layers.uncovered, 0.0, layers.alpha)[:, :, None]
    colour = np.where(layers.uncovered[:, :, None], 0.0, layers.colour)
    composed = base * (1.0 - alpha) + colour
    pixels[crop] = np.where(in_zone[:, :, None], composed, exemplar[crop])

    kind_crop = np.where(hole_crop, FILLED, UNCHANGED).astype(np.uint8)
    kind_crop[(alpha[:, :, 0] > 0) & ~(hole_crop & (alpha[:, :, 0] < 0.5))] = WARPED
    kind_crop[~in_zone] = UNCHANGED
    # a pixel that stayed exactly what it was is unchanged whatever touched it
    same = np.all(pixels[crop] == exemplar[crop], axis=2) & ~hole_crop
    kind_crop[same] = UNCHANGED
    kind[crop] = kind_crop
    if on_progress is not None:
        on_progress(1.0)
    provenance = solved = None
    if want_provenance or want_solved:
        inside = _box_provenance(exemplar_labels, box, kind_crop, layers, filled)
        provenance = _provenance(exemplar_labels, box, inside) if want_provenance else None
        if want_solved:
            solved = _solved_edit((height, width), box, in_zone, alpha[:, :, 0], layers, hole_crop, filled, labels_full[crop], inside)
    return Composition(pixels, kind, zone, moving, provenance, solved)


class _MovingLayers:
    """The moving regions laid over the staying world, inside the edit's box: premultiplied
    colour (h, w, C), their alpha (h, w), the pixels of a moving region its motions cannot
    reach (h, w) bool, and, for provenance, the dominant motion's source per pixel and whether
    that motion is a pure translation (a replay then samples whole pixels)."""

    def __init__(self, exemplar: np.ndarray, box, want_sources: bool):
        x0, y0, x1, y1 = box
        self.box = box
        self.colour = np.zeros((y1 - y0, x1 - x0, exemplar.shape[2]), np.float32)
        self.alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
        self.uncovered = np.zeros((y1 - y0, x1 - x0), bool)
        self.source = np.full((y1 - y0, x1 - x0, 2), np.nan, np.float32) if want_sources else None
        self.share = np.zeros((y1 - y0, x1 - x0), np.float32) if want_sources else None
        self.translated = np.zeros((y1 - y0, x1 - x0), bool) if want_sources else None


def _lay_moving(layers, exemplar, exemplar_labels, target_labels, motions, moving, growing, alphas, graph, on_progress):
    """Transport each moving region band by band and add it to `layers`; a growing region only
    over what it gained, with no feather (its own pixels beside it stay as they are)."""
    margin = int(np.ceil(4 * EDGE_FEATHER)) + 1
    placed_exemplar = graph.place_exemplar(exemplar) if graph is not None and (moving or growing) else None
    bx0, by0 = layers.box[:2]

    def lay_band(region, target_mask, region_mask, source_mask, prepared, band, placed):
        motion = motions[region]
        colour, dominant = transport_band(
            exemplar, source_mask, motion, prepared, band, want_dominant=layers.source is not None and placed is None, placed=placed
        )
        coverage = _coverage(region_mask, prepared, motion.box, band)
        x0, y0, x1, y1 = band
        inside = target_mask[y0:y1, x0:x1]
        if region in growing:
            alpha = inside.astype(np.float32)
        elif region in alphas:
            alpha = alphas[region][y0:y1, x0:x1].astype(np.float32)
        else:  # anti-aliased outward only: inside its target the region is whole
            alpha = np.where(inside, 1.0, feathered_mask(target_mask, band, EDGE_FEATHER)).astype(np.float32)
        reached = coverage >= COVERED
        alpha = np.where(reached, alpha, 0.0)
        rows, cols = slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0)
        layers.colour[rows, cols] += colour * alpha[:, :, None]
        layers.alpha[rows, cols] += alpha
        layers.uncovered[rows, cols] |= inside & ~reached
        if layers.source is not None:
            better = alpha > layers.share[rows, cols]
            layers.share[rows, cols][better] = alpha[better]
            sources, translated = _dominant_sources(prepared, dominant, band, motion)
            layers.source[rows, cols][better] = sources[better]
            layers.translated[rows, cols][better] = translated[better]

    laid = moving + growing
    with ThreadPoolExecutor(max_workers=thread_count()) as pool:
        for done, region in enumerate(laid):
            target_mask = target_labels == region
            if region in growing:
                target_mask &= exemplar_labels != region
            box = bounding_box(target_mask | (alphas[region] > 0) if region in alphas and region not in growing else target_mask, margin)
            region_mask = exemplar_labels == region
            source_mask = region_interior(region_mask)
            prepared = prepare_motion(exemplar, motions[region], region_mask)
            # the blend graph takes affines only: a region with a smooth field blends here
            placed = graph.region(placed_exemplar, source_mask) if graph is not None and motions[region].field is None else None
            # bands own their rows, so threads never write the same pixels
            bands = [(box[0], top, box[2], min(top + BAND_ROWS, box[3])) for top in range(box[1], box[3], BAND_ROWS)]
            jobs = [pool.submit(lay_band, region, target_mask, region_mask, source_mask, prepared, b, placed) for b in bands]
            try:
                for finished, job in enumerate(jobs):
                    job.result()
                    if on_progress is not None:
                        on_progress((done + (finished + 1) / len(jobs)) / max(len(laid), 1))
            except BaseException:  # a failure or a cancel from on_progress: drop the bands not started
                for job in jobs:
                    job.cancel()
                raise
    # where two moving regions' soft edges overlap, their shares are scaled to sum to one
    over = np.maximum(layers.alpha, 1.0)
    layers.colour /= over[:, :, None]
    layers.alpha /= over


def _coverage(region_mask: np.ndarray, prepared, grid_box, band) -> np.ndarray:
    """How much of the motions' weight lands on the region's own exemplar pixels (band h, w)."""
    mask = region_mask.view(np.uint8)
    total = np.zeros((band[3] - band[1], band[2] - band[0]), np.float32)
    weight_sum = np.zeros_like(total)
    for pull, weights in zip(prepared.pulls, prepared.weights):
        if not weights.any():
            continue
        weight = upsample_weights(weights, grid_box, band)
        landed = sample_pulled(mask, pull, band, cv2.BORDER_CONSTANT, cv2.INTER_NEAREST).astype(np.float32)
        total += weight * landed
        weight_sum += weight
    return total / np.maximum(weight_sum, 1e-12)


def _dominant_sources(prepared, dominant, band, motion) -> tuple[np.ndarray, np.ndarray]:
    """The exemplar coordinate (band h, w, 2) x, y that each pixel's dominant motion samples,
    and whether that motion is a pure translation (band h, w) bool."""
    x0, y0, x1, y1 = band
    xs = np.arange(x0, x1, dtype=np.float64)[None, :]
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    chosen = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
    translated = np.zeros((y1 - y0, x1 - x0), bool)
    if dominant is None:  # a blend graph reports no dominant motion: the heaviest one overall
        dominant = np.full((y1 - y0, x1 - x0), prepared.indices[int(np.argmax(prepared.weights.sum(axis=(1, 2))))])
    for index, pull in zip(prepared.indices, prepared.pulls):
        pick = dominant == index
        if not pick.any():
            continue
        if isinstance(pull, FieldPull):  # the maps the blend of this band evaluated (cached)
            map_x, map_y = pull.maps(band)
            chosen[pick, 0], chosen[pick, 1] = map_x[pick], map_y[pick]
            continue
        chosen[pick, 0] = (pull[0, 0] * xs + pull[0, 1] * ys + pull[0, 2])[pick]
        chosen[pick, 1] = (pull[1, 0] * xs + pull[1, 1] * ys + pull[1, 2])[pick]
        translated[pick] = np.abs(pull[:, :2] - np.eye(2)).max() <= 1e-9
    return chosen, translated


def _solved_edit(shape, box, in_zone, alpha, layers, hole, filled, labels, provenance) -> SolvedEdit:
    """The composition as an engine.replay.SolvedEdit: the crop's coverage, the dominant motions'
    sources (whole pixels where that motion is a translation), the fill's sources and labels,
    and the box's provenance."""
    x0, y0 = box[:2]
    moves = alpha > 0
    source = np.nan_to_num(layers.source, nan=0.0)
    source = np.where(layers.translated[:, :, None], np.rint(source), source)
    fill_dx = np.zeros(hole.shape, np.int32)
    fill_dy = np.zeros(hole.shape, np.int32)
    fill_dx[filled.rows - y0, filled.cols - x0] = filled.source_x - filled.cols
    fill_dy[filled.rows - y0, filled.cols - x0] = filled.source_y - filled.rows
    xs = np.arange(x0, x0 + hole.shape[1], dtype=np.float32)[None, :]
    ys = np.arange(y0, y0 + hole.shape[0], dtype=np.float32)[:, None]
    return SolvedEdit(
        shape,
        box,
        zone=in_zone.copy(),
        alpha=np.where(moves, alpha, 0.0).astype(np.float32),
        shift_x=np.where(moves, np.rint((source[:, :, 0] - xs) * SHIFT_STEPS), 0).astype(np.int32),
        shift_y=np.where(moves, np.rint((source[:, :, 1] - ys) * SHIFT_STEPS), 0).astype(np.int32),
        hole=hole.copy(),
        fill_dx=fill_dx,
        fill_dy=fill_dy,
        labels=labels.astype(np.int32),
        kind=provenance.kind,
        source_region=provenance.source_region,
    )


def _base_labels(target, staying, moving_alpha, in_zone) -> np.ndarray:
    """The staying region at every pixel of the crop (h, w) int: the target's own label where it
    stays, else (under a moving region's soft edge) the nearest staying target label; -1 where
    no staying region is left at all."""
    stays = staying[np.maximum(target, 0)] & (target >= 0)
    if stays.all() or not stays.any():
        return np.where(stays, target, -1)
    needs = in_zone & ~stays & (moving_alpha < 1.0 - 1e-6)
    labels = np.where(stays, target, -1)
    if needs.any():
        labels[needs] = target.ravel()[nearest_pixel(stays)[needs]]
    return labels


def _unchanged_provenance(exemplar_labels: np.ndarray) -> Provenance:
    height, width = exemplar_labels.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return Provenance(xs, ys, exemplar_labels.astype(np.int32), np.zeros((height, width), np.uint8))


def _provenance(exemplar_labels, box, inside: Provenance) -> Provenance:
    """The provenance of the whole image: `inside` (the box's) in the box, unchanged elsewhere."""
    result = _unchanged_provenance(exemplar_labels)
    x0, y0, x1, y1 = box
    for whole, part in zip((result.source_x, result.source_y, result.source_region, result.kind), (inside.source_x, inside.source_y, inside.source_region, inside.kind)):
        whole[y0:y1, x0:x1] = part
    return result


def _box_provenance(exemplar_labels, box, kind_crop, layers, filled) -> Provenance:
    """The provenance inside the edit's box (its h, w): the dominant motion's source where a
    moving region mostly covers a warped pixel, the fill's where a pixel was filled, else the
    pixel itself."""
    height, width = exemplar_labels.shape
    x0, y0, x1, y1 = box
    source_y, source_x = (axis.astype(np.float32) for axis in np.mgrid[y0:y1, x0:x1])
    warped = kind_crop == WARPED
    moved = warped & ~np.isnan(layers.source[:, :, 0]) & (layers.share >= 0.5)
    source_x[moved] = layers.source[moved, 0]
    source_y[moved] = layers.source[moved, 1]
    fill_x = np.full(kind_crop.shape, np.nan, np.float32)
    fill_y = np.full(kind_crop.shape, np.nan, np.float32)
    fill_x[filled.rows - y0, filled.cols - x0] = filled.source_x
    fill_y[filled.rows - y0, filled.cols - x0] = filled.source_y
    from_fill = ~np.isnan(fill_x) & ~moved
    source_x[from_fill] = fill_x[from_fill]
    source_y[from_fill] = fill_y[from_fill]
    cols = np.clip(np.rint(source_x).astype(np.int64), 0, width - 1)
    rows = np.clip(np.rint(source_y).astype(np.int64), 0, height - 1)
    return Provenance(source_x, source_y, exemplar_labels[rows, cols].astype(np.int32), kind_crop.copy())

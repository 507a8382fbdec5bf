"""The fill for vacated pixels: patch-based completion from each region's own exemplar pixels.

A vacated pixel is one of target region r that r's motions cannot pull from r's own exemplar
pixels (the place a figure left, a part that grew). Its colour is found as in space-time
completion (Wexler et al. 2007) with a PatchMatch search (Barnes et al. 2009), coarse to fine:

1. At a working resolution (long side at most WORK_SIDE), every hole pixel p of target label r
   gets a source q in the exemplar, q inside r's exemplar pixels, minimising the patch distance
       D(p, q) = mean_o [t(p + o) = t(p)] |image(p + o) - exemplar(q + o)|^2
                        + LABEL_COST [t(p + o) != e(q + o)]
   over the PATCH x PATCH offsets o that fall inside the image, each weighted by its confidence
   (known pixels 1, guesses less the deeper in the hole): colours are compared within the
   pixel's own region, and the label term carries the edges between regions (a horizon, a
   shoreline) into the hole. A small cost on the distance from p to q prefers nearby sources.
2. The search is PatchMatch's: in scan order (alternating), each pixel tries its visited
   neighbours' sources shifted by one, random sources at halving radii, and one anywhere in
   its region (the compiled loops in engine.patchmatch). Each hole pixel is then the vote of
   the patches that cover it (only votes whose source pixel is of the pixel's own region
   count), and the search runs again on the voted image; the field found at one level starts
   the next finer one. When the working image is smaller than the painting, the field is then
   made coherent (a pixel takes the offset most of its neighbours share, when it fits nearly as
   well), so that the blocks of full-resolution pixels each working pixel becomes are not a
   mosaic of unrelated copies.
3. At full resolution each hole pixel takes its working pixel's offset, scaled to whole pixels
   (a shift map), voted over its 2 x 2 nearest working pixels: where they agree the painting's
   own pixels are copied exactly, brushwork at native size. A source outside the region is
   never used.
4. Joins: the difference between what the fill would put just outside the hole and what the
   painting has there is spread smoothly over the hole (a pull-push membrane, as in mean-value
   cloning, Farbman et al. 2009), at the working resolution, and added at full resolution.
5. Seams: where two copied patches meet with a step that neither source's own brushwork
   explains (across a smooth gradient), the step is spread out by a screened Poisson solve at
   full resolution (engine.stitch); seams inside textured brushwork are left as copied.

The search, the vote and the stitching solve are compiled (numba), the rest is numpy and
OpenCV; the cost is linear in the hole's working pixels (the stitching: in its full-resolution
pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import patchmatch
from .regions import resize_labels
from .stitch import image_sampler, stitch
from .threads import thread_count

# Long side of the working image the search runs on; finer detail comes from the shift map.
WORK_SIDE = 512
PATCH = 7
# Added to a patch pixel's squared colour distance (0..1 per channel) when the labels differ.
LABEL_COST = 0.02
# Added per (source distance / image side)^2: paintings change across the canvas (a sky darkens
# upward), so of two equally good sources the nearer one wins.
DISTANCE_COST = 0.2
# EM rounds (search, then vote) at the coarsest level and at every finer one.
COARSE_ROUNDS = 4
FINE_ROUNDS = 1
# The coarsest level's hole is at most this many pixels thick (twice its inscribed radius).
COARSE_THICKNESS = 20
MAX_LEVELS = 5
# PatchMatch iterations (alternating scan order) in each EM round, run in parallel bands of
# BAND_PIXELS hole pixels (the result does not depend on the thread count).
PASSES = 2
BAND_PIXELS = 512
# Random search radius (pixels) at levels finer than the coarsest, whose field comes from above.
FINE_RADIUS = 8
CONFIDENCE_DECAY = 1.3
SEED = 0
REMAP_ROW = 1024
# Full-resolution sources keep this far (pixels) inside their region.
SOURCE_RIM = 2
# Coherence of an upsampled field: rounds in which a pixel takes the offset most of its
# neighbours share, if its patch distance is within 1 + COHERE_TOLERANCE of its own (tuned on
# the tuning paintings' vacate edits at 1024 px: 2 rounds at 0.1 gave 2% lower perceptual
# distance, 4 at 0.3 gave 3%).
COHERE_ROUNDS = 4
COHERE_TOLERANCE = 0.3


@dataclass(frozen=True)
class Fill:
    """The fill of a hole: its full-resolution pixels (rows, cols (N,)), their colours (N, C)
    float32, and the exemplar pixel each was taken from (source_x, source_y (N,) int64)."""

    rows: np.ndarray
    cols: np.ndarray
    colours: np.ndarray
    source_x: np.ndarray
    source_y: np.ndarray


def fill_vacated(
    image: np.ndarray,
    hole: np.ndarray,
    target_labels: np.ndarray,
    exemplar: np.ndarray,
    exemplar_labels: np.ndarray,
) -> Fill:
    """Fill the `hole` (H, W) bool of `image` (H, W, C) float32, the result so far (its pixels
    under the hole are ignored). Hole pixel p is made from exemplar (H, W, C) pixels of region
    target_labels[p] in exemplar_labels (both (H, W) int); every hole label must exist there."""
    height, width = hole.shape
    rows, cols = np.nonzero(hole)
    if rows.size == 0:
        empty = np.zeros(0, np.int64)
        return Fill(empty, empty, np.zeros((0, image.shape[2]), np.float32), empty, empty)
    scale = min(1.0, WORK_SIDE / max(height, width))
    work_h, work_w = max(1, round(height * scale)), max(1, round(width * scale))
    patchmatch.set_threads(thread_count())
    levels = _pyramid(image, hole, target_labels, exemplar, exemplar_labels, (work_h, work_w))
    field = _search(levels, upsampled=scale < 1.0)
    work = levels[0]
    offsets = field - _positions(work.hole_rows, work.hole_cols)  # (n, 2) y, x in working pixels
    offset_map = np.zeros((work_h, work_w, 2), np.float64)
    offset_map[work.hole_rows, work.hole_cols] = offsets
    colours, source_y, source_x = _apply_full(
        rows, cols, offset_map, work.hole, (work_h / height, work_w / width), target_labels, exemplar,
        _interior_labels(exemplar_labels, np.unique(target_labels[hole]), SOURCE_RIM),
    )
    correction = _membrane(work, field)
    colours += _sample_bilinear(correction, rows, cols, (work_h / height, work_w / width))
    colours = stitch(hole.shape, rows, cols, colours, source_y, source_x, image_sampler(target_labels),
                     image_sampler(image), image_sampler(exemplar))
    # the membrane may not leave the painting's own range (the working exemplar's, cheap to find)
    np.clip(colours, work.exemplar.min(axis=(0, 1)), work.exemplar.max(axis=(0, 1)), out=colours)
    return Fill(rows, cols, colours.astype(np.float32), source_x, source_y)


def warm_up() -> None:
    """Compile the fill's loops now (or load them from numba's disk cache) on a small hole, so
    that the first edit does not wait for it: the plug-ins' engine install calls this."""
    image = np.random.default_rng(SEED).random((48, 64, 3)).astype(np.float32)
    labels = np.zeros((48, 64), np.int32)
    labels[24:] = 1
    hole = np.zeros((48, 64), bool)
    hole[16:32, 20:44] = True
    fill_vacated(image, hole, labels, image, labels)


@dataclass
class Level:
    """One level of the search: the image with its hole (h, w[, C]), both label maps, the
    exemplar, and which exemplar pixels may be a source (label, or -1)."""

    image: np.ndarray
    hole: np.ndarray
    target: np.ndarray
    exemplar: np.ndarray
    exemplar_labels: np.ndarray
    sources: np.ndarray
    hole_rows: np.ndarray
    hole_cols: np.ndarray


def _level(image, hole, target, exemplar, exemplar_labels) -> Level:
    # A source centre must sit inside its region at this level: one pixel in keeps a patch's
    # centre off the anti-aliased rim.
    sources = _interior_labels(exemplar_labels, np.unique(target[hole]), 1)
    hole_rows, hole_cols = np.nonzero(hole)
    return Level(image, hole, target, exemplar, exemplar_labels, sources, hole_rows, hole_cols)


def _pyramid(image, hole, target_labels, exemplar, exemplar_labels, work_shape) -> list[Level]:
    """Levels from the working resolution (index 0) down to one where the hole is at most
    COARSE_THICKNESS pixels thick."""
    work_h, work_w = work_shape
    image_w, hole_w, target_w, exemplar_w, labels_w = _shrink(image, hole, target_labels, exemplar, exemplar_labels, work_h, work_w)
    thickness = 2.0 * cv2.distanceTransform(np.pad(hole_w, 1).view(np.uint8), cv2.DIST_L2, 3).max()
    count = 1
    while count < MAX_LEVELS and thickness / 2**count >= COARSE_THICKNESS and min(work_h, work_w) / 2**count >= 16:
        count += 1
    levels = [_level(image_w, hole_w, target_w, exemplar_w, labels_w)]
    for _ in range(1, count):
        prior = levels[-1]
        h, w = max(1, prior.hole.shape[0] // 2), max(1, prior.hole.shape[1] // 2)
        levels.append(_level(*_shrink(prior.image, prior.hole, prior.target, prior.exemplar, prior.exemplar_labels, h, w)))
    return levels


def _shrink(image, hole, target, exemplar, exemplar_labels, h, w):
    """Everything at (h, w): colours averaged, labels sampled, and a pixel in the hole when any
    part of it is (so that every full-resolution hole pixel has a working pixel)."""
    if hole.shape == (h, w):
        return image, hole, target, exemplar, exemplar_labels
    channels = image.shape[2]
    small_hole = cv2.resize(hole.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0
    return (
        cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, channels),
        small_hole,
        _hole_labels(target, hole, small_hole, h, w),
        cv2.resize(exemplar, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, channels),
        resize_labels(exemplar_labels, h, w),
    )


def _hole_labels(target, hole, small_hole, h, w):
    """Target labels at (h, w): sampled, except that a small hole pixel whose sample falls
    outside the big hole takes the label of the big hole pixel nearest to its centre."""
    small = resize_labels(target, h, w)
    sampled_hole = resize_labels(hole.view(np.uint8), h, w).view(bool)
    fix_rows, fix_cols = np.nonzero(small_hole & ~sampled_hole)
    if fix_rows.size:
        big_h, big_w = hole.shape
        centre_rows = np.minimum(((fix_rows + 0.5) * big_h / h).astype(np.int64), big_h - 1)
        centre_cols = np.minimum(((fix_cols + 0.5) * big_w / w).astype(np.int64), big_w - 1)
        # the nearest hole pixel is inside the small pixel's footprint: search the hole's box only
        # (a full-size distance transform costs a few hundred MB at 4096 px)
        margin = int(np.ceil(max(big_h / h, big_w / w))) + 1
        hole_rows, hole_cols = np.nonzero(hole)
        y0, x0 = max(0, hole_rows.min() - margin), max(0, hole_cols.min() - margin)
        y1, x1 = min(big_h, hole_rows.max() + 1 + margin), min(big_w, hole_cols.max() + 1 + margin)
        nearest = nearest_pixel(hole[y0:y1, x0:x1])[np.clip(centre_rows - y0, 0, y1 - y0 - 1), np.clip(centre_cols - x0, 0, x1 - x0 - 1)]
        near_rows, near_cols = np.divmod(nearest, x1 - x0)
        small[fix_rows, fix_cols] = target[near_rows + y0, near_cols + x0]
    return small


def nearest_pixel(mask: np.ndarray) -> np.ndarray:
    """For every pixel of an image, the flat index of the nearest True pixel of `mask` (H, W)
    bool (which must have one): (H, W) int64."""
    _, nearest = cv2.distanceTransformWithLabels((~mask).view(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    index = np.zeros(int(nearest.max()) + 1, np.int64)
    index[nearest[mask]] = np.flatnonzero(mask)
    return index[nearest]


def _positions(rows, cols) -> np.ndarray:
    return np.stack([rows, cols], axis=1).astype(np.int64)


def _confidence(hole: np.ndarray) -> np.ndarray:
    """Known pixels count fully; a guess inside the hole less the deeper it lies (Wexler's
    confidence), so that the texture around the hole, not a blurred guess, picks sources."""
    depth = cv2.distanceTransform(np.pad(hole, 1).view(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.where(hole, CONFIDENCE_DECAY ** -depth, 1.0).astype(np.float32)


class _Search:
    """One level's arrays in the layout the compiled loops (engine.patchmatch) take."""

    def __init__(self, level: Level):
        h, w = level.hole.shape
        self.level = level
        self.rows, self.cols = level.hole_rows, level.hole_cols
        self.target = np.ascontiguousarray(level.target, np.int32)
        self.exemplar = np.ascontiguousarray(level.exemplar, np.float32)
        self.exemplar_labels = np.ascontiguousarray(level.exemplar_labels, np.int32)
        self.sources = np.ascontiguousarray(level.sources, np.int32)
        self.index = np.full((h, w), -1, np.int64)
        self.index[self.rows, self.cols] = np.arange(self.rows.size)
        confidence = _confidence(level.hole)
        self.weight = confidence
        self.confidence = confidence[self.rows, self.cols].astype(np.float64)
        self.patch_weight = patchmatch.patch_weights(confidence, self.rows, self.cols, PATCH // 2)
        # every region's allowed source centres, for the search's jump anywhere in the region
        labels = self.target[self.rows, self.cols]
        wanted, slot = np.unique(labels, return_inverse=True)
        self.slot = slot.astype(np.int64)
        flat_sources = self.sources.ravel()
        order = np.argsort(flat_sources, kind="stable")
        first = np.searchsorted(flat_sources[order], wanted, side="left")
        last = np.searchsorted(flat_sources[order], wanted, side="right")
        self.candidates = order.astype(np.int64)
        self.candidate_start = first.astype(np.int64)
        self.candidate_count = (last - first).astype(np.int64)

    def costs(self, image: np.ndarray, field: np.ndarray) -> np.ndarray:
        return patchmatch.costs(image, self.weight, self.target, self.exemplar, self.exemplar_labels, self.rows,
                                self.cols, field, PATCH // 2, LABEL_COST, DISTANCE_COST)

    def improve(self, image: np.ndarray, field: np.ndarray, cost: np.ndarray, radius: float, seed: int,
                shifted: bool) -> None:
        """PASSES PatchMatch iterations, in place on field and cost. Bands of BAND_PIXELS hole
        pixels (in raster order) run in parallel; `shifted` moves them by half a band, so that
        what one band finds crosses into the next on the next round."""
        offset = BAND_PIXELS // 2 if shifted else 0
        band_start = np.clip(np.arange(-offset, len(field) + BAND_PIXELS, BAND_PIXELS), 0, len(field)).astype(np.int64)
        patchmatch.search(image, self.weight, self.target, self.exemplar, self.exemplar_labels, self.sources,
                          self.rows, self.cols, self.index, field, cost, self.patch_weight, band_start, self.candidates,
                          self.candidate_start, self.candidate_count, self.slot, PASSES, float(radius), PATCH // 2,
                          LABEL_COST, DISTANCE_COST, seed)

    def cohere(self, image: np.ndarray, field: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return patchmatch.cohere(image, self.weight, self.target, self.exemplar, self.exemplar_labels, self.sources,
                                 self.rows, self.cols, self.index, field, cost, PATCH // 2, LABEL_COST, DISTANCE_COST,
                                 COHERE_TOLERANCE)

    def vote(self, field: np.ndarray, strength: np.ndarray | None = None) -> np.ndarray:
        if strength is None:
            strength = np.ones(len(field), np.float64)
        return patchmatch.vote(self.exemplar, self.exemplar_labels, self.target, self.rows, self.cols, self.index,
                               field, strength, PATCH // 2)


def _search(levels: list[Level], upsampled: bool) -> np.ndarray:
    """The nearest-neighbour field at the working level: (n, 2) source (y, x) per hole pixel.
    When the working level is smaller than the image (`upsampled`), each working pixel becomes a
    block of full-resolution pixels, and an incoherent field a mosaic of blocks: the field is
    then made coherent (COHERE_ROUNDS rounds of `patchmatch.cohere`)."""
    rng = np.random.default_rng(SEED)
    field = None
    for depth in range(len(levels) - 1, -1, -1):
        level = levels[depth]
        search = _Search(level)
        coarsest = depth == len(levels) - 1
        if field is None:
            field = _random_sources(level, rng)
            image = _first_guess(level)
        else:
            field = _upsampled(levels[depth + 1], field, level, rng)
            image = level.image.copy()
            image[level.hole] = search.vote(field)
        image = np.ascontiguousarray(image, np.float32)
        radius = max(level.hole.shape) / 4 if coarsest else FINE_RADIUS
        for round_ in range(COARSE_ROUNDS if coarsest else FINE_ROUNDS):
            cost = search.costs(image, field)
            search.improve(image, field, cost, radius, SEED + 1000 * depth + round_, shifted=round_ % 2 == 1)
            image[level.hole] = search.vote(field, _vote_strength(search.confidence, cost))
        if depth == 0 and upsampled:
            cost = search.costs(image, field)
            for _ in range(COHERE_ROUNDS):
                field, cost = search.cohere(image, field, cost)
    assert field is not None  # there is always a level
    return field


def _vote_strength(confidence: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Wexler's vote weights: a patch counts by its confidence and by how well it matched."""
    scale = 2.0 * max(float(np.percentile(cost, 75)), 1e-6)
    return confidence * np.exp(-cost / scale)


def _first_guess(level: Level) -> np.ndarray:
    """The coarsest image with its hole diffused in (OpenCV's Telea), to start the search."""
    image = level.image.copy()
    channels = image.shape[2]
    low, high = image.min(), image.max()
    span = max(float(high - low), 1e-6)
    mask = level.hole.view(np.uint8) * 255
    for start in range(0, channels, 3):
        part = image[:, :, start : min(start + 3, channels)]
        eight = np.ascontiguousarray(np.clip((part - low) / span * 255 + 0.5, 0, 255).astype(np.uint8))
        filled = cv2.inpaint(eight, mask, 3, cv2.INPAINT_TELEA).reshape(part.shape)
        part[level.hole] = filled[level.hole].astype(np.float32) / 255 * span + low
    return image


def _random_sources(level: Level, rng) -> np.ndarray:
    """A random allowed source for every hole pixel: a pixel of its own region."""
    labels = level.target[level.hole_rows, level.hole_cols]
    field = np.zeros((labels.size, 2), np.int64)
    for label in np.unique(labels):
        pick = labels == label
        candidates = np.flatnonzero(level.sources == label)
        chosen = candidates[rng.integers(candidates.size, size=int(pick.sum()))]
        field[pick] = np.stack(np.divmod(chosen, level.sources.shape[1]), axis=1)
    return field


def _allowed(level: Level, sources: np.ndarray, labels: np.ndarray) -> np.ndarray:
    h, w = level.sources.shape
    rows, cols = sources[:, 0], sources[:, 1]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    allowed = np.zeros(len(sources), bool)
    allowed[inside] = level.sources[rows[inside], cols[inside]] == labels[inside]
    return allowed


def _upsampled(coarse: Level, field: np.ndarray, fine: Level, rng) -> np.ndarray:
    """The coarse field carried to the next finer level: each fine hole pixel takes the offset of
    the coarse pixel it lies in, doubled; where that lands outside its region, a random source."""
    ch, cw = coarse.hole.shape
    offsets = np.zeros((ch, cw, 2), np.int64)
    offsets[coarse.hole_rows, coarse.hole_cols] = field - _positions(coarse.hole_rows, coarse.hole_cols)
    fh, fw = fine.hole.shape
    rows = np.minimum(fine.hole_rows * ch // fh, ch - 1)
    cols = np.minimum(fine.hole_cols * cw // fw, cw - 1)
    scale = np.array([fh / ch, fw / cw])
    candidates = _positions(fine.hole_rows, fine.hole_cols) + np.rint(offsets[rows, cols] * scale).astype(np.int64)
    labels = fine.target[fine.hole_rows, fine.hole_cols]
    allowed = _allowed(fine, candidates, labels)
    if not allowed.all():
        candidates[~allowed] = _random_sources(fine, rng)[~allowed]
    return candidates


def _interior_labels(exemplar_labels: np.ndarray, wanted: np.ndarray, rim: int) -> np.ndarray:
    """exemplar_labels (H, W) with each region's outer `rim` pixels set to -1 (a painted map's
    edge is rarely exact, and the outline there is a neighbour's); of the regions in `wanted`,
    one with nothing left inside keeps all its pixels."""
    size = 2 * rim + 1
    kernel = np.ones((size, size), np.uint8)
    # a pixel is on a rim where the labels within `rim` of it differ: the morphological gradient
    # of 16-bit labels (a fraction of float32's memory at full size) is not 0 there
    small = int(exemplar_labels.min()) >= -1 and int(exemplar_labels.max()) < 2**16 - 1
    compact = np.empty(exemplar_labels.shape, np.uint16 if small else np.float32)
    np.add(exemplar_labels, 1, out=compact, casting="unsafe")
    on_rim = cv2.morphologyEx(compact, cv2.MORPH_GRADIENT, kernel, borderType=cv2.BORDER_REPLICATE) != 0
    del compact
    interior = exemplar_labels.copy()
    interior[on_rim] = -1
    for label in wanted:
        if not (interior == label).any():
            interior[exemplar_labels == label] = label
    return interior


def _apply_full(rows, cols, offset_map, work_hole, scale, target_labels, exemplar, exemplar_labels):
    """Full-resolution hole pixels (rows, cols) from the working offsets: the bilinear vote of
    the 2 x 2 nearest working hole pixels' offsets in whole pixels, each counted only where its
    source pixel is inside the pixel's own region (exemplar_labels: interiors, see
    `_interior_labels`); where none is, the nearest offset in the 6 x 6 around that is, then the
    region's nearest interior pixel. -> colours (N, C) float64, source y, x (N,)."""
    height, width = target_labels.shape
    sy, sx = scale
    v = (rows + 0.5) * sy - 0.5
    u = (cols + 0.5) * sx - 0.5
    top, left = np.floor(v).astype(np.int64), np.floor(u).astype(np.int64)
    fy, fx = v - top, u - left
    own = target_labels[rows, cols]
    exemplar_flat = exemplar.reshape(height * width, -1)
    labels_flat = exemplar_labels.ravel()

    def candidate(pick, dy, dx):
        """The source (flat index) that working neighbour (dy, dx) offers pixels `pick`, or -1."""
        r = np.clip(top[pick] + dy, 0, work_hole.shape[0] - 1)
        c = np.clip(left[pick] + dx, 0, work_hole.shape[1] - 1)
        source_rows = rows[pick] + np.rint(offset_map[r, c, 0] / sy).astype(np.int64)
        source_cols = cols[pick] + np.rint(offset_map[r, c, 1] / sx).astype(np.int64)
        fits = work_hole[r, c] & (source_rows >= 0) & (source_rows < height) & (source_cols >= 0) & (source_cols < width)
        flat = np.clip(source_rows, 0, height - 1) * width + np.clip(source_cols, 0, width - 1)
        fits &= labels_flat[flat] == own[pick]
        return np.where(fits, flat, -1)

    everyone = np.arange(rows.size)
    colours = np.zeros((rows.size, exemplar.shape[2]), np.float64)
    total = np.zeros(rows.size, np.float64)
    best = np.zeros(rows.size)
    source_flat = np.full(rows.size, -1, np.int64)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        flat = candidate(everyone, dy, dx)
        weight = np.where(flat >= 0, (fy if dy else 1 - fy) * (fx if dx else 1 - fx) + 1e-6, 0.0)
        colours += weight[:, None] * exemplar_flat[np.maximum(flat, 0)]
        total += weight
        better = weight > best
        best[better] = weight[better]
        source_flat[better] = flat[better]
    missing = np.flatnonzero(total <= 0)
    if missing.size:
        closest = np.full(missing.size, np.inf)
        for dy in range(-2, 4):
            for dx in range(-2, 4):
                flat = candidate(missing, dy, dx)
                distance = (top[missing] + dy - v[missing]) ** 2 + (left[missing] + dx - u[missing]) ** 2
                closer = (flat >= 0) & (distance < closest)
                closest[closer] = distance[closer]
                source_flat[missing[closer]] = flat[closer]
        far = missing[source_flat[missing] < 0]
        if far.size:
            source_flat[far] = _nearest_of_region(rows[far], cols[far], own[far], exemplar_labels)
        colours[missing] = exemplar_flat[source_flat[missing]]
        total[missing] = 1.0
    colours /= total[:, None]
    source_y, source_x = np.divmod(source_flat, width)
    return colours, source_y, source_x


def _nearest_of_region(rows, cols, labels, exemplar_labels) -> np.ndarray:
    """Flat index of the exemplar pixel of region labels[i] nearest to (rows[i], cols[i]) (few
    points: the nearest pixel of a region to a point is on its edge, so only edges are searched)."""
    width = exemplar_labels.shape[1]
    result = np.zeros(rows.size, np.int64)
    for label in np.unique(labels):
        pick = np.flatnonzero(labels == label)
        region = (exemplar_labels == label).view(np.uint8)
        edge_rows, edge_cols = np.nonzero((region > 0) & (cv2.erode(region, np.ones((3, 3), np.uint8)) == 0))
        for start in range(0, pick.size, 256):
            part = pick[start : start + 256]
            distance = (rows[part, None] - edge_rows) ** 2 + (cols[part, None] - edge_cols) ** 2
            closest = distance.argmin(axis=1)
            result[part] = edge_rows[closest] * width + edge_cols[closest]
    return result


def _membrane(level: Level, field: np.ndarray) -> np.ndarray:
    """The tone correction (h, w, C) at the working level: at each known pixel next to the hole
    (of the same region as its nearest hole pixel b), the painting minus what b's source would
    put there; spread over the hole by pull-push interpolation, region by region."""
    h, w = level.hole.shape
    channels = level.image.shape[2]
    correction = np.zeros((h, w, channels), np.float32)
    ring = (cv2.dilate(level.hole.view(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~level.hole
    ring_rows, ring_cols = np.nonzero(ring)
    if ring_rows.size == 0:
        return correction
    slot = np.zeros(h * w, np.int64)
    slot[level.hole_rows * w + level.hole_cols] = np.arange(len(field))
    hole_pixel = slot[nearest_pixel(level.hole)[ring_rows, ring_cols]]
    source_rows = field[hole_pixel, 0] + ring_rows - level.hole_rows[hole_pixel]
    source_cols = field[hole_pixel, 1] + ring_cols - level.hole_cols[hole_pixel]
    fits = (source_rows >= 0) & (source_rows < h) & (source_cols >= 0) & (source_cols < w)
    ring_labels = level.target[ring_rows, ring_cols]
    fits &= ring_labels == level.target[level.hole_rows[hole_pixel], level.hole_cols[hole_pixel]]
    source_rows, source_cols = np.clip(source_rows, 0, h - 1), np.clip(source_cols, 0, w - 1)
    difference = level.image[ring_rows, ring_cols] - level.exemplar[source_rows, source_cols]
    hole_labels = level.target[level.hole]
    for label in np.unique(hole_labels):
        known = fits & (ring_labels == label)
        if not known.any():
            continue
        # interpolated over the box of what it corrects only: the hole's part and its ring
        region = (level.target == label) & (level.hole | ring)
        region_rows, region_cols = np.nonzero(region)
        y0, x0 = region_rows.min(), region_cols.min()
        box_h, box_w = region_rows.max() + 1 - y0, region_cols.max() + 1 - x0
        weight = np.zeros((box_h, box_w), np.float32)
        values = np.zeros((box_h, box_w, channels), np.float32)
        weight[ring_rows[known] - y0, ring_cols[known] - x0] = 1.0
        values[ring_rows[known] - y0, ring_cols[known] - x0] = difference[known]
        smooth = pull_push(values, weight)
        correction[region_rows, region_cols] = smooth[region_rows - y0, region_cols - x0]
    return correction


def pull_push(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A smooth interpolation (h, w, C) of values (h, w, C) known with confidence weight (h, w)
    in [0, 1] (1: exactly known, 0: unknown):
    averaged down a pyramid until every pixel is covered, then blended back up (Gortler et al.
    1996), so known pixels keep their values and the rest vary smoothly between them."""
    if min(weight.shape) <= 1 or weight.min() >= 1:
        return values
    h, w = weight.shape
    small_h, small_w = (h + 1) // 2, (w + 1) // 2
    channels = values.shape[2]
    # Area averages handle odd sizes symmetrically; four fine pixels make one coarse one.
    mean_w = cv2.resize(weight, (small_w, small_h), interpolation=cv2.INTER_AREA).reshape(small_h, small_w)
    mean_v = cv2.resize(values * weight[:, :, None], (small_w, small_h), interpolation=cv2.INTER_AREA)
    coarse_v = mean_v.reshape(small_h, small_w, channels) / np.maximum(mean_w, 1e-12)[:, :, None]
    coarse = pull_push(coarse_v, np.minimum(4.0 * mean_w, 1.0).astype(np.float32))
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, channels)
    blend = weight[:, :, None]
    return blend * values + (1 - blend) * up


def _sample_bilinear(grid: np.ndarray, rows, cols, scale) -> np.ndarray:
    """grid (h, w, C) at full-resolution pixels (rows, cols (N,)) -> (N, C)."""
    sy, sx = scale
    # remap wants maps under 32767 on a side: the points as rows of REMAP_ROW
    count = rows.size
    padded = -(-count // REMAP_ROW) * REMAP_ROW
    map_y = np.zeros(padded, np.float32)
    map_x = np.zeros(padded, np.float32)
    map_y[:count] = (rows + 0.5) * sy - 0.5
    map_x[:count] = (cols + 0.5) * sx - 0.5
    shape = (padded // REMAP_ROW, REMAP_ROW)
    sampled = cv2.remap(grid, map_x.reshape(shape), map_y.reshape(shape), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(padded, grid.shape[2])[:count]

"""A solved edit as a value: solve once on one image, replay the same manipulation on any layer.

Solving (engine.pipeline.solve) runs the model, the reshape step and the fill search on the image
the artist chose (the visible painting, or one layer such as the flat colours). What it found is
kept pixel by pixel inside the edit's box, so that any layer of the same size can be given the
same manipulation without solving again:

    out(p) = base(p) (1 - alpha(p)) + layer(moving(p)) alpha(p)      inside the edit zone
    out(p) = layer(p)                                                elsewhere, bit for bit

- `alpha` is the moving regions' coverage (their anti-aliased edges included), and `moving` the
  exemplar coordinate that the pixel's dominant motion samples. A layer is sampled there
  bilinearly; where that motion is a pure translation the coordinate is a whole pixel, so a
  moved 1-px line stays a crisp 1-px line (bilinear at a pixel centre is that pixel).
- `base` is the layer's own pixel, or at a filled pixel the layer at the fill's source pixel
  (the same source in every layer) plus a tone correction made from *this* layer's own pixels
  around the hole (the same pull-push membrane as engine.fill, at its working resolution),
  with the seams that this layer shows stitched as engine.fill stitches them (engine.stitch).
- Layers with alpha are sampled premultiplied, so alpha moves with the colour and transparent
  places stay transparent.

Everything but the tone correction and the stitching is linear in the layer: replaying on layers that sum to a
picture gives results that sum to the replay on that picture. A learned model's blend of
several motions and its texture guidance are not replayed (each pixel takes its dominant
motion): on its own solving image a replay is within a few levels of the direct result there
(measured by bench/replay.py).

Saved as a compressed .npz (`save`, `load`), versioned by FORMAT and VERSION.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .fill import REMAP_ROW, WORK_SIDE, nearest_pixel, pull_push
from .io.files import write_bytes_atomically
from .masks import bounding_box
from .stitch import stitch

FORMAT = "simnet-solved-edit"
VERSION = 1
# Motion shifts are kept in fixed point, this many steps to a pixel (a power of two: a whole
# pixel stays exact): finer than float32 holds a coordinate at 4096 px, and the saved file, whose
# shifts are stored as differences along each row, stays small (an affine's differences repeat).
SHIFT_STEPS = 1024
# The largest shift a file may hold (pixels), so that the fixed point stays inside int32.
MAX_SHIFT = (1 << 30) // SHIFT_STEPS
# Region ids beyond this are not ours (a file's labels are checked against it).
MAX_LABEL = 1 << 30


@dataclass(frozen=True)
class SolvedEdit:
    """A solved manipulation of an (H, W) image (`shape`). Outside `box` (x0, y0, x1, y1) nothing
    changes; every array is the box's (h, w):
    zone bool: the edit zone (outside it the layer is kept as it is);
    alpha float32 in [0, 1]: the moving regions' coverage;
    shift_x, shift_y int32: where the dominant motion samples, relative to the pixel (the
        exemplar coordinate minus the pixel's own) in 1/SHIFT_STEPS of a pixel; 0 where alpha is 0;
    hole bool: the filled pixels; fill_dx, fill_dy int32: each one's source pixel, relative to
        the pixel (0 elsewhere);
    labels int32: the target region of each pixel (the tone correction is made per region);
    kind uint8 and source_region int32: the solving image's provenance (engine.compose)."""

    shape: tuple[int, int]
    box: tuple[int, int, int, int]
    zone: np.ndarray
    alpha: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    hole: np.ndarray
    fill_dx: np.ndarray
    fill_dy: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    source_region: np.ndarray

    @property
    def crop(self) -> tuple[slice, slice]:
        x0, y0, x1, y1 = self.box
        return slice(y0, y1), slice(x0, x1)


_ARRAYS = {
    "zone": np.bool_,
    "alpha": np.float32,
    "shift_x": np.int32,
    "shift_y": np.int32,
    "hole": np.bool_,
    "fill_dx": np.int32,
    "fill_dy": np.int32,
    "labels": np.int32,
    "kind": np.uint8,
    "source_region": np.int32,
}


def unchanged(height: int, width: int) -> SolvedEdit:
    """The edit that changes nothing, for an (H, W) image."""
    empty: dict[str, np.ndarray] = {name: np.zeros((0, 0), dtype) for name, dtype in _ARRAYS.items()}
    return SolvedEdit((height, width), (0, 0, 0, 0), **empty)


@dataclass(frozen=True)
class _Region:
    """One region's part of the tone correction: its box (x0, y0, x1, y1) in the hole's box, the
    working size, the ring pixels it knows (indices into the ring) and their place in its box,
    its hole pixels (indices into the hole) and their place on the working grid."""

    size: tuple[int, int]
    small: tuple[int, int]
    known: np.ndarray
    known_rows: np.ndarray
    known_cols: np.ndarray
    area: np.ndarray
    pick: np.ndarray
    grid_rows: np.ndarray
    grid_cols: np.ndarray


@dataclass(frozen=True)
class _Plan:
    """What replaying needs, worked out once per solved edit (it is the same for every layer):
    the changed pixels (flat indices into the image), their coverage, where the moving layer
    samples them, where their base comes from, and the ring of the hole with its regions."""

    targets: np.ndarray
    alpha: np.ndarray
    moves: np.ndarray
    moving_x: np.ndarray
    moving_y: np.ndarray
    bases: np.ndarray
    hole: np.ndarray
    ring: np.ndarray
    ring_at: np.ndarray
    ring_sources: np.ndarray
    regions: list[_Region]


_plans: dict[int, tuple[SolvedEdit, _Plan]] = {}


def _plan(solved: SolvedEdit) -> _Plan:
    """The replay plan of `solved`, kept for the last few edits replayed (by identity)."""
    kept = _plans.get(id(solved))
    if kept is not None and kept[0] is solved:
        return kept[1]
    plan = _make_plan(solved)
    if len(_plans) >= 2:
        _plans.pop(next(iter(_plans)))
    _plans[id(solved)] = (solved, plan)
    return plan


def _make_plan(solved: SolvedEdit) -> _Plan:
    width = solved.shape[1]
    x0, y0 = solved.box[:2]
    hole_mask = solved.hole & solved.zone
    changed = solved.zone & (hole_mask | (solved.alpha > 0))
    rows, cols = np.nonzero(changed)
    targets = (y0 + rows) * width + x0 + cols
    alpha = solved.alpha[rows, cols][:, None]
    moves = np.flatnonzero(alpha[:, 0] > 0)
    in_hole = hole_mask[rows, cols]
    bases = targets.copy()  # a kept pixel is its own base; a filled one its fill's source
    bases[in_hole] += solved.fill_dy[rows[in_hole], cols[in_hole]].astype(np.int64) * width + solved.fill_dx[rows[in_hole], cols[in_hole]]
    hole = np.flatnonzero(in_hole)  # row-major over the box
    empty = np.zeros(0, np.int64)
    ring, ring_at, ring_sources, regions = empty, empty, empty, []
    box = bounding_box(hole_mask, 1)
    if box is not None:
        ring, ring_at, ring_sources, regions = _ring_plan(solved, hole_mask, box, changed, rows, cols)
    # where the moving layer samples each moving pixel (float32, as remap takes it: a whole
    # shift stays a whole pixel)
    moving_x = (x0 + cols[moves]).astype(np.float32) + solved.shift_x[rows[moves], cols[moves]] / np.float32(SHIFT_STEPS)
    moving_y = (y0 + rows[moves]).astype(np.float32) + solved.shift_y[rows[moves], cols[moves]] / np.float32(SHIFT_STEPS)
    return _Plan(targets, alpha, moves, moving_x, moving_y, bases, hole, ring, ring_at, ring_sources, regions)


def _ring_plan(solved, hole_mask, box, changed, rows, cols):
    """The pixels just outside the hole that the tone correction is made from (engine.fill's
    membrane): each one's flat index, its place among the changed pixels (-1: kept as it is), the
    pixel its nearest hole pixel's source would put there, and the regions' parts."""
    height, width = solved.shape
    x0, y0 = solved.box[:2]
    bx0, by0, bx1, by1 = box
    hole = hole_mask[by0:by1, bx0:bx1]
    labels = solved.labels[by0:by1, bx0:bx1]
    ring = (cv2.dilate(hole.view(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~hole
    ring_rows, ring_cols = np.nonzero(ring)
    hole_rows, hole_cols = np.nonzero(hole)
    if ring_rows.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, []
    near_rows, near_cols = np.divmod(nearest_pixel(hole)[ring_rows, ring_cols], hole.shape[1])
    # the ring pixel's offset from its nearest hole pixel, from that pixel's source
    source_y = solved.fill_dy[by0 + near_rows, bx0 + near_cols].astype(np.int64) + y0 + by0 + ring_rows
    source_x = solved.fill_dx[by0 + near_rows, bx0 + near_cols].astype(np.int64) + x0 + bx0 + ring_cols
    fits = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    ring_labels = labels[ring_rows, ring_cols]
    fits &= ring_labels == labels[near_rows, near_cols]
    slot = np.full(changed.shape, -1, np.int64)
    slot[rows, cols] = np.arange(rows.size)
    ring_at = slot[by0 + ring_rows, bx0 + ring_cols]
    ring_flat = (y0 + by0 + ring_rows) * width + x0 + bx0 + ring_cols
    ring_sources = np.clip(source_y, 0, height - 1) * width + np.clip(source_x, 0, width - 1)
    scale = min(1.0, WORK_SIDE / max(height, width))
    hole_labels = labels[hole_rows, hole_cols]
    regions = []
    for label in np.unique(hole_labels):
        known = np.flatnonzero(fits & (ring_labels == label))
        if known.size == 0:
            continue
        pick = np.flatnonzero(hole_labels == label)
        part = bounding_box((labels == label) & (hole | ring), 1)  # the membrane over this region's part only
        assert part is not None
        px0, py0, px1, py1 = part
        size = (py1 - py0, px1 - px0)
        small = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        weight = np.zeros(size, np.float32)
        weight[ring_rows[known] - py0, ring_cols[known] - px0] = 1.0
        area = cv2.resize(weight, small[::-1], interpolation=cv2.INTER_AREA).reshape(small) if small != size else weight
        sy, sx = small[0] / size[0], small[1] / size[1]
        grid_rows = np.clip((hole_rows[pick] - py0 + 0.5) * sy - 0.5, 0, small[0] - 1)
        grid_cols = np.clip((hole_cols[pick] - px0 + 0.5) * sx - 0.5, 0, small[1] - 1)
        regions.append(_Region(size, small, known, ring_rows[known] - py0, ring_cols[known] - px0, area, pick,
                               grid_rows, grid_cols))
    return ring_flat, ring_at, ring_sources, regions


def apply(solved: SolvedEdit, pixels: np.ndarray) -> np.ndarray:
    """Replay `solved` on a layer (H, W, C) (C in 1, 3, 4; float32 in [0, 1], the solved shape).
    Returns a new (H, W, C) float32; the layer is not changed. The work is in proportion to the
    pixels the edit changes, not to the layer, and what does not depend on the layer is worked
    out once per edit."""
    layer = _check_layer(pixels, solved.shape)
    result = layer.copy()
    if solved.zone.size == 0:
        return result
    plan = _plan(solved)
    if plan.targets.size == 0:
        return result
    height, width, channels = layer.shape
    flat = layer.reshape(height * width, channels)
    premultiply = channels == 4
    moving = np.zeros((plan.targets.size, channels), np.float32)
    if plan.moves.size:
        moving[plan.moves] = _bilinear(layer, plan.moving_x, plan.moving_y, premultiply)
    base = _gather(flat, plan.bases, premultiply)
    composed = moving  # base (1 - alpha) + moving alpha: exactly the moving pixel where alpha is 1
    composed *= plan.alpha
    composed += base * (1.0 - plan.alpha)
    if plan.hole.size:
        tone, low, high = _tone_correction(plan, flat, composed, premultiply)
        hole_alpha = plan.alpha[plan.hole]
        hole_base = base[plan.hole]
        stitched = _stitched(solved, plan, flat, composed, hole_base + tone, premultiply)
        corrected = composed[plan.hole] + (stitched - hole_base) * (1.0 - hole_alpha)
        # the membrane may not leave the range of the pixels it mixes, as in engine.fill
        low, high = np.minimum(low, hole_base.min(axis=0)), np.maximum(high, hole_base.max(axis=0))
        composed[plan.hole] = np.clip(corrected, low, high)
    if not np.isfinite(composed).all():
        raise InputError("the layer holds NaN or infinite values")
    result.reshape(height * width, channels)[plan.targets] = _straight(composed) if premultiply else composed
    return result


def _stitched(solved: SolvedEdit, plan: _Plan, flat: np.ndarray, composed: np.ndarray, colours: np.ndarray,
              premultiply: bool) -> np.ndarray:
    """The hole's base colours (N, C) with this layer's seams stitched as engine.fill stitches
    them (engine.stitch): its known pixels are the replayed result around the hole, its sources
    the fill's."""
    height, width = solved.shape
    x0, y0 = solved.box[:2]
    box_h, box_w = solved.labels.shape
    rows, cols = np.divmod(plan.targets[plan.hole], width)
    source_y, source_x = np.divmod(plan.bases[plan.hole], width)

    def label_at(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        r, c = y - y0, x - x0
        inside = (r >= 0) & (r < box_h) & (c >= 0) & (c < box_w)
        labels = np.full(y.shape, -1, np.int64)  # outside the box: not joined
        labels[inside] = solved.labels[r[inside], c[inside]]
        return labels

    def picture_at(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        wanted = y * width + x
        values = _gather(flat, wanted, premultiply)
        at = np.minimum(np.searchsorted(plan.targets, wanted), plan.targets.size - 1)  # targets are sorted
        replayed = plan.targets[at] == wanted
        values[replayed] = composed[at[replayed]]
        return values

    return stitch((height, width), rows, cols, colours, source_y, source_x, label_at, picture_at,
                  lambda y, x: _gather(flat, y * width + x, premultiply), 3 if premultiply else None)


def _gather(flat: np.ndarray, indices: np.ndarray, premultiply: bool) -> np.ndarray:
    """Pixels (H * W, C) at flat `indices` (N,) -> (N, C) float32, premultiplied if asked."""
    values = np.take(flat, indices, axis=0)
    if premultiply:
        values[:, :3] *= values[:, 3:4]
    return values


def _bilinear(layer: np.ndarray, x: np.ndarray, y: np.ndarray, premultiply: bool) -> np.ndarray:
    """The layer sampled bilinearly at points x, y (N,) (pixel centres on integers; beyond the
    edge the edge pixel repeats) -> (N, C) float32, premultiplied before interpolating when
    asked. OpenCV's remap, over the part of the layer the points reach: at a pixel centre it
    gives that pixel exactly."""
    height, width, channels = layer.shape
    x0 = min(max(0, int(np.floor(x.min()))), width - 1)
    y0 = min(max(0, int(np.floor(y.min()))), height - 1)
    x1 = max(min(width, int(np.ceil(x.max())) + 2), x0 + 1)
    y1 = max(min(height, int(np.ceil(y.max())) + 2), y0 + 1)
    source = layer[y0:y1, x0:x1]
    if premultiply:
        source = source.copy()
        source[:, :, :3] *= source[:, :, 3:4]
    count = x.size
    padded = -(-count // REMAP_ROW) * REMAP_ROW  # remap's maps stay under 32767 on a side
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count] = x - x0
    map_y[:count] = y - y0
    shape = (padded // REMAP_ROW, REMAP_ROW)
    sampled = cv2.remap(source, map_x.reshape(shape), map_y.reshape(shape), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(padded, channels)[:count]


def _tone_correction(plan: _Plan, flat: np.ndarray, composed: np.ndarray, premultiply: bool):
    """The tone correction (N, C) at the hole's pixels for this layer, and the range (C,) of the
    values it was made from: at each ring pixel, what the result has there minus what its nearest
    hole pixel's source would put there, spread smoothly over the hole region by region. On a
    layer with alpha a ring pixel counts as much as both it and its source are painted (the
    lesser alpha): where either is transparent there is no tone to match, and ink that merely
    touches the hole (line art) is not smeared into it."""
    channels = composed.shape[1]
    correction = np.zeros((plan.hole.size, channels), np.float32)
    if plan.ring.size == 0:
        return correction, np.full(channels, np.inf, np.float32), np.full(channels, -np.inf, np.float32)
    outside = _gather(flat, plan.ring, premultiply)
    replayed = plan.ring_at >= 0
    outside[replayed] = composed[plan.ring_at[replayed]]
    sources = _gather(flat, plan.ring_sources, premultiply)
    difference = outside - sources
    confidence = np.minimum(outside[:, 3], sources[:, 3]) if premultiply else None
    for region in plan.regions:
        values = np.zeros(region.size + (channels,), np.float32)
        if confidence is None or (confidence[region.known] == 1.0).all():
            values[region.known_rows, region.known_cols] = difference[region.known]
            smooth = _membrane(values, region.area, region)
        else:
            known = confidence[region.known]
            if not known.any():
                continue
            weight = np.zeros(region.size, np.float32)
            weight[region.known_rows, region.known_cols] = known
            values[region.known_rows, region.known_cols] = difference[region.known] * known[:, None]
            area = cv2.resize(weight, region.small[::-1], interpolation=cv2.INTER_AREA).reshape(region.small) \
                if region.small != region.size else weight
            smooth = _membrane(values, area, region)
        correction[region.pick] = _sample(smooth, region.grid_rows, region.grid_cols)
    return correction, outside.min(axis=0), outside.max(axis=0)


def _membrane(values: np.ndarray, weight: np.ndarray, region: _Region) -> np.ndarray:
    """A region's known ring values (h, w, C), already multiplied by their weight, with that
    weight on the working grid (small h, small w) -> their pull-push interpolation at the working
    size (small h, small w, C): a 1-px ring covers about `scale` of each working pixel it
    crosses, so that share counts as fully known."""
    if region.small == region.size:
        return pull_push(values / np.maximum(weight, 1e-12)[:, :, None], weight)
    summed = cv2.resize(values, region.small[::-1], interpolation=cv2.INTER_AREA).reshape(region.small + values.shape[2:])
    mean = summed / np.maximum(weight, 1e-12)[:, :, None]  # values are 0 off the ring: the sum is the ring's
    share = min(region.small[0] / region.size[0], region.small[1] / region.size[1])
    return pull_push(mean.astype(np.float32), np.minimum(weight / share, 1.0).astype(np.float32))


def _sample(grid: np.ndarray, v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """grid (h, w, C) bilinearly at grid positions v, u (N,) (inside the grid) -> (N, C)."""
    count = v.size
    padded = -(-count // REMAP_ROW) * REMAP_ROW  # remap's maps stay under 32767 on a side
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count], map_y[:count] = u, v
    shape = (padded // REMAP_ROW, REMAP_ROW)
    sampled = cv2.remap(grid, map_x.reshape(shape), map_y.reshape(shape), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(padded, grid.shape[2])[:count]


def _straight(pixels: np.ndarray) -> np.ndarray:
    """Premultiplied (N, 4) -> straight alpha, in place (0 where transparent); returns it."""
    alpha = pixels[:, 3]
    if (alpha == 1.0).all():  # opaque: nothing to divide
        return pixels
    inverse = np.zeros_like(alpha)
    np.divide(1.0, alpha, out=inverse, where=alpha > 0)
    pixels[:, :3] *= inverse[:, None]
    return pixels


def _check_layer(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    layer = np.asarray(pixels)
    if layer.ndim == 2:
        layer = layer[:, :, None]
    if layer.ndim != 3 or layer.shape[2] not in (1, 3, 4):
        raise InputError(f"a layer must be (H, W, C) with C in 1, 3, 4; got {layer.shape}")
    if layer.shape[:2] != tuple(shape):
        raise InputError(
            f"the layer is {layer.shape[1]}x{layer.shape[0]} but the edit was solved on a "
            f"{shape[1]}x{shape[0]} image: replay it on layers of that size (place them on the canvas first)"
        )
    layer = layer.astype(np.float32, copy=False)
    if not np.isfinite(layer).all():
        raise InputError("the layer holds NaN or infinite values")
    return layer


def resized(solved: SolvedEdit, height: int, width: int) -> SolvedEdit:
    """The same edit for the same composition at another size (H, W): every map resampled (masks,
    labels and fill sources nearest, coverage and motion coordinates bilinear), coordinates moved
    to the new pixel grid. The proportions must match (within 1%)."""
    old_h, old_w = solved.shape
    if (height, width) == (old_h, old_w):
        return solved
    if abs((width / height) / (old_w / old_h) - 1.0) > 0.01:
        raise InputError(
            f"the edit was solved on a {old_w}x{old_h} image and cannot be replayed on {width}x{height}, "
            f"a different shape: only the same composition at another size can reuse it"
        )
    if solved.zone.size == 0:
        return unchanged(height, width)
    sy, sx = height / old_h, width / old_w
    x0, y0, x1, y1 = solved.box
    box = (int(np.floor(x0 * sx)), int(np.floor(y0 * sy)), min(width, int(np.ceil(x1 * sx))), min(height, int(np.ceil(y1 * sy))))
    new_w, new_h = box[2] - box[0], box[3] - box[1]
    # where each new pixel of the box lies on the old box's pixel grid
    xs = ((np.arange(box[0], box[2]) + 0.5) / sx - 0.5 - x0).astype(np.float32)
    ys = ((np.arange(box[1], box[3]) + 0.5) / sy - 0.5 - y0).astype(np.float32)
    map_x, map_y = np.meshgrid(xs, ys)

    def nearest(array: np.ndarray) -> np.ndarray:
        cols = np.clip(np.rint(map_x).astype(np.int64), 0, array.shape[1] - 1)
        rows = np.clip(np.rint(map_y).astype(np.int64), 0, array.shape[0] - 1)
        return array[rows, cols]

    def linear(array: np.ndarray) -> np.ndarray:
        out = cv2.remap(array.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(new_h, new_w)

    # the motion's shifts, carried outward from where they are known so that the bilinear
    # resampling at a region's edge never mixes in the zeros beyond it
    moves = solved.alpha > 0
    offset_x, offset_y = solved.shift_x.astype(np.float32), solved.shift_y.astype(np.float32)
    if moves.any():
        spread = nearest_pixel(moves)
        offset_x, offset_y = offset_x.ravel()[spread], offset_y.ravel()[spread]
    alpha = np.clip(linear(solved.alpha), 0.0, 1.0)
    shift_x = np.where(alpha > 0, np.rint(linear(offset_x) * sx), 0).astype(np.int32)
    shift_y = np.where(alpha > 0, np.rint(linear(offset_y) * sy), 0).astype(np.int32)
    hole = nearest(solved.hole)
    # a fill source: the old source pixel's centre on the new grid, kept inside the image
    new_x = np.arange(box[0], box[2])[None, :]
    new_y = np.arange(box[1], box[3])[:, None]
    old_x = np.clip(np.rint(map_x + x0), 0, old_w - 1).astype(np.int64)
    old_y = np.clip(np.rint(map_y + y0), 0, old_h - 1).astype(np.int64)
    source_x = np.clip(np.rint((old_x + nearest(solved.fill_dx) + 0.5) * sx - 0.5), 0, width - 1)
    source_y = np.clip(np.rint((old_y + nearest(solved.fill_dy) + 0.5) * sy - 0.5), 0, height - 1)
    fill_dx = np.where(hole, source_x - new_x, 0).astype(np.int32)
    fill_dy = np.where(hole, source_y - new_y, 0).astype(np.int32)
    return SolvedEdit(
        (height, width),
        box,
        zone=nearest(solved.zone),
        alpha=alpha.astype(np.float32),
        shift_x=shift_x,
        shift_y=shift_y,
        hole=hole,
        fill_dx=fill_dx,
        fill_dy=fill_dy,
        labels=nearest(solved.labels),
        kind=nearest(solved.kind),
        source_region=nearest(solved.source_region),
    )


def save(solved: SolvedEdit, path: str | os.PathLike) -> None:
    """Write `solved` as a compressed .npz (atomically: a reader never sees half a file)."""
    write_bytes_atomically(Path(path), to_bytes(solved))


def to_bytes(solved: SolvedEdit) -> bytes:
    buffer = io.BytesIO()
    arrays = {name: getattr(solved, name) for name in _ARRAYS}
    for name in ("shift_x", "shift_y"):  # differences along each row: an affine's repeat
        arrays[name] = np.diff(arrays[name], axis=1, prepend=np.int32(0)) if arrays[name].size else arrays[name]
    np.savez_compressed(
        buffer,
        format=np.array(FORMAT),
        version=np.array(VERSION),
        shape=np.array(solved.shape, np.int64),
        box=np.array(solved.box, np.int64),
        **arrays,
    )
    return buffer.getvalue()


def load(path: str | os.PathLike) -> SolvedEdit:
    """Read a solved edit written by `save`; anything else is refused with a message that says why."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    try:
        return from_bytes(path.read_bytes(), path.name)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{path.name} is not a solved edit (write one with --save-edit): {error}") from None


def from_bytes(data: bytes, name: str = "the file") -> SolvedEdit:
    if not data.startswith(b"PK"):  # an .npz is a zip archive; np.load would try unpickling anything else
        raise InputError(f"{name} is not a solved edit (write one with --save-edit)")
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        if "format" not in stored.files or str(stored["format"]) != FORMAT:
            raise InputError(f"{name} is not a solved edit (write one with --save-edit)")
        version = int(stored["version"])
        if version != VERSION:
            raise InputError(f"{name} is a solved edit of format version {version}; this engine reads version {VERSION}: "
                             f"solve the edit again with this version")
        missing = [key for key in ("shape", "box", *_ARRAYS) if key not in stored.files]
        if missing:
            raise InputError(f"{name} is a damaged solved edit: it has no {', '.join(missing)}")
        values = {key: stored[key] for key in ("shape", "box", *_ARRAYS)}
    for key in ("shift_x", "shift_y"):
        if values[key].dtype == np.int32 and values[key].ndim == 2:
            summed = np.cumsum(values[key], axis=1, dtype=np.int64)
            if summed.size and np.abs(summed).max() > MAX_SHIFT * SHIFT_STEPS:
                raise InputError(f"{name} is a damaged solved edit: a shift is beyond {MAX_SHIFT} pixels")
            values[key] = summed.astype(np.int32)
    return _checked(values, name)


def _checked(values: dict, name: str) -> SolvedEdit:
    """A SolvedEdit from stored arrays, after checking everything `apply` relies on."""

    def damaged(why: str) -> InputError:
        return InputError(f"{name} is a damaged solved edit: {why}")

    shape, box = values["shape"], values["box"]
    if shape.shape != (2,) or box.shape != (4,) or shape.dtype.kind != "i" or box.dtype.kind != "i":
        raise damaged("its shape or box is not a list of whole numbers")
    height, width = (int(v) for v in shape)
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 < height <= 1 << 20 and 0 < width <= 1 << 20):
        raise damaged(f"its image size {width}x{height} is impossible")
    empty = (x0, y0, x1, y1) == (0, 0, 0, 0)
    if not empty and not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise damaged(f"its box {x0, y0, x1, y1} is not inside the {width}x{height} image")
    expected = (0, 0) if empty else (y1 - y0, x1 - x0)
    arrays = {}
    for key, dtype in _ARRAYS.items():
        array = values[key]
        if array.shape != expected or array.dtype != np.dtype(dtype):
            raise damaged(f"{key} is {array.dtype}{list(array.shape)}, not {np.dtype(dtype)}{list(expected)}")
        arrays[key] = array
    if not np.isfinite(arrays["alpha"]).all():
        raise damaged("it holds NaN or infinite values")
    if arrays["alpha"].size and (arrays["alpha"].min() < 0 or arrays["alpha"].max() > 1):
        raise damaged("its coverage is outside [0, 1]")
    rows, cols = np.nonzero(arrays["hole"])
    fill_x = x0 + cols.astype(np.int64) + arrays["fill_dx"][rows, cols]
    fill_y = y0 + rows.astype(np.int64) + arrays["fill_dy"][rows, cols]
    if fill_x.size and (fill_x.min() < 0 or fill_x.max() >= width or fill_y.min() < 0 or fill_y.max() >= height):
        raise damaged("a fill source lies outside the image")
    if arrays["labels"].size and (np.abs(arrays["labels"]).max() > MAX_LABEL):
        raise damaged("its region ids are out of range")
    return SolvedEdit((height, width), (x0, y0, x1, y1), **arrays)


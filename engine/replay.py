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
  around the hole (the same pull-push membrane as engine.fill, at its working resolution).
- Layers with alpha are sampled premultiplied, so alpha moves with the colour and transparent
  places stay transparent.

Everything but the tone correction is linear in the layer: replaying on layers that sum to a
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
from .fill import WORK_SIDE, nearest_pixel, pull_push
from .io.files import write_bytes_atomically
from .masks import bounding_box

FORMAT = "simnet-solved-edit"
VERSION = 1
# Region ids beyond this are not ours (a file's labels are checked against it).
MAX_LABEL = 1 << 30


@dataclass(frozen=True)
class SolvedEdit:
    """A solved manipulation of an (H, W) image (`shape`). Outside `box` (x0, y0, x1, y1) nothing
    changes; every array is the box's (h, w):
    zone bool: the edit zone (outside it the layer is kept as it is);
    alpha float32 in [0, 1]: the moving regions' coverage;
    moving_x, moving_y float32: where the dominant motion samples (exemplar pixel coordinates,
        pixel centres on integers; 0 where alpha is 0);
    hole bool: the filled pixels; fill_x, fill_y int32: each one's source pixel (-1 elsewhere);
    labels int32: the target region of each pixel (the tone correction is made per region);
    kind uint8 and source_region int32: the solving image's provenance (engine.compose)."""

    shape: tuple[int, int]
    box: tuple[int, int, int, int]
    zone: np.ndarray
    alpha: np.ndarray
    moving_x: np.ndarray
    moving_y: np.ndarray
    hole: np.ndarray
    fill_x: np.ndarray
    fill_y: np.ndarray
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
    "moving_x": np.float32,
    "moving_y": np.float32,
    "hole": np.bool_,
    "fill_x": np.int32,
    "fill_y": np.int32,
    "labels": np.int32,
    "kind": np.uint8,
    "source_region": np.int32,
}


def unchanged(height: int, width: int) -> SolvedEdit:
    """The edit that changes nothing, for an (H, W) image."""
    empty: dict[str, np.ndarray] = {name: np.zeros((0, 0), dtype) for name, dtype in _ARRAYS.items()}
    return SolvedEdit((height, width), (0, 0, 0, 0), **empty)


def apply(solved: SolvedEdit, pixels: np.ndarray) -> np.ndarray:
    """Replay `solved` on a layer (H, W, C) (C in 1, 3, 4; float32 in [0, 1], the solved shape).
    Returns a new (H, W, C) float32; the layer is not changed."""
    layer = _check_layer(pixels, solved.shape)
    result = layer.copy()
    if solved.zone.size == 0:
        return result
    rows, cols = solved.crop
    has_alpha = layer.shape[2] == 4
    sampled = _premultiplied(layer) if has_alpha else layer
    crop = sampled[rows, cols]
    alpha = solved.alpha[:, :, None]

    moving = np.zeros_like(crop)
    moved = bounding_box(solved.alpha > 0)
    if moved is not None:
        mx0, my0, mx1, my1 = moved
        warped = cv2.remap(
            sampled,
            np.ascontiguousarray(solved.moving_x[my0:my1, mx0:mx1]),
            np.ascontiguousarray(solved.moving_y[my0:my1, mx0:mx1]),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        moving[my0:my1, mx0:mx1] = warped.reshape(my1 - my0, mx1 - mx0, -1)

    base = crop.copy()
    hole_rows, hole_cols = np.nonzero(solved.hole)
    base[hole_rows, hole_cols] = sampled[solved.fill_y[hole_rows, hole_cols], solved.fill_x[hole_rows, hole_cols]]
    composed = base * (1.0 - alpha) + moving * alpha
    if hole_rows.size:
        tone = _tone_correction(solved, composed, sampled, hole_rows, hole_cols)
        composed[hole_rows, hole_cols] += tone * (1.0 - solved.alpha[hole_rows, hole_cols, None])
        # the membrane may not leave this layer's own range, as in engine.fill
        np.clip(composed, crop.min(axis=(0, 1)), crop.max(axis=(0, 1)), out=composed)
    if has_alpha:
        composed = _straight(composed)
    # where the layer's own pixel is kept, it is kept bit for bit
    changed = solved.zone & (solved.hole | (solved.alpha > 0))
    result[rows, cols][changed] = composed[changed]
    return result


def _tone_correction(solved, composed, sampled, hole_rows, hole_cols) -> np.ndarray:
    """The tone correction (N, C) at the hole's pixels for this layer: at each pixel just outside
    the hole (of the same region as its nearest hole pixel b), what the layer has there minus what
    b's source would put there, spread smoothly over the hole region by region (engine.fill's
    membrane), at engine.fill's working resolution."""
    height, width = solved.shape
    h, w = solved.hole.shape
    hole = solved.hole
    ring = (cv2.dilate(hole.view(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~hole
    ring_rows, ring_cols = np.nonzero(ring)
    correction = np.zeros((hole_rows.size, composed.shape[2]), np.float32)
    if ring_rows.size == 0:
        return correction
    nearest = nearest_pixel(hole)[ring_rows, ring_cols]
    near_rows, near_cols = np.divmod(nearest, w)
    source_y = solved.fill_y[near_rows, near_cols] + ring_rows - near_rows
    source_x = solved.fill_x[near_rows, near_cols] + ring_cols - near_cols
    fits = (source_x >= 0) & (source_x < width) & (source_y >= 0) & (source_y < height)
    fits &= solved.labels[ring_rows, ring_cols] == solved.labels[near_rows, near_cols]
    difference = composed[ring_rows, ring_cols] - sampled[np.clip(source_y, 0, height - 1), np.clip(source_x, 0, width - 1)]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = (max(1, round(h * scale)), max(1, round(w * scale)))
    hole_labels = solved.labels[hole_rows, hole_cols]
    for label in np.unique(hole_labels):
        known = fits & (solved.labels[ring_rows, ring_cols] == label)
        if not known.any():
            continue
        weight = np.zeros((h, w), np.float32)
        values = np.zeros((h, w, composed.shape[2]), np.float32)
        weight[ring_rows[known], ring_cols[known]] = 1.0
        values[ring_rows[known], ring_cols[known]] = difference[known]
        smooth = _membrane(values, weight, small)
        pick = hole_labels == label
        correction[pick] = _sample(smooth, hole_rows[pick], hole_cols[pick], (small[0] / h, small[1] / w))
    return correction


def _membrane(values: np.ndarray, weight: np.ndarray, small: tuple[int, int]) -> np.ndarray:
    """Known ring values (h, w, C) with weight (h, w) -> their pull-push interpolation (small
    h, small w, C) at the working size: a 1-px ring covers about `scale` of each working pixel
    it crosses, so that share counts as fully known."""
    h, w = weight.shape
    if small == (h, w):
        return pull_push(values, weight)
    area = cv2.resize(weight, small[::-1], interpolation=cv2.INTER_AREA).reshape(small)
    summed = cv2.resize(values * weight[:, :, None], small[::-1], interpolation=cv2.INTER_AREA).reshape(small + values.shape[2:])
    mean = summed / np.maximum(area, 1e-12)[:, :, None]
    share = min(small[0] / h, small[1] / w)
    return pull_push(mean.astype(np.float32), np.minimum(area / share, 1.0).astype(np.float32))


def _sample(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """grid (h, w, C) bilinearly at full-resolution pixels (rows, cols (N,)) -> (N, C)."""
    v = np.clip((rows + 0.5) * scale[0] - 0.5, 0, grid.shape[0] - 1)
    u = np.clip((cols + 0.5) * scale[1] - 0.5, 0, grid.shape[1] - 1)
    top, left = np.floor(v).astype(np.int64), np.floor(u).astype(np.int64)
    bottom, right = np.minimum(top + 1, grid.shape[0] - 1), np.minimum(left + 1, grid.shape[1] - 1)
    fy, fx = (v - top)[:, None], (u - left)[:, None]
    upper = grid[top, left] * (1 - fx) + grid[top, right] * fx
    lower = grid[bottom, left] * (1 - fx) + grid[bottom, right] * fx
    return (upper * (1 - fy) + lower * fy).astype(np.float32)


def _premultiplied(layer: np.ndarray) -> np.ndarray:
    out = layer.copy()
    out[:, :, :3] *= layer[:, :, 3:4]
    return out


def _straight(pixels: np.ndarray) -> np.ndarray:
    alpha = pixels[:, :, 3:4]
    out = pixels.copy()
    out[:, :, :3] = np.where(alpha > 0, pixels[:, :, :3] / np.maximum(alpha, 1e-12), 0.0)
    return out


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

    # the motion's offsets, carried outward from where they are known so that the bilinear
    # resampling at a region's edge never mixes in the zeros beyond it
    moves = solved.alpha > 0
    offset_x = solved.moving_x - (np.arange(x0, x1, dtype=np.float32)[None, :])
    offset_y = solved.moving_y - (np.arange(y0, y1, dtype=np.float32)[:, None])
    if moves.any():
        spread = nearest_pixel(moves)
        offset_x, offset_y = offset_x.ravel()[spread], offset_y.ravel()[spread]
    alpha = np.clip(linear(solved.alpha), 0.0, 1.0)
    new_x = np.arange(box[0], box[2], dtype=np.float32)[None, :]
    new_y = np.arange(box[1], box[3], dtype=np.float32)[:, None]
    moving_x = np.where(alpha > 0, (new_x + linear(offset_x) * sx), 0.0).astype(np.float32)
    moving_y = np.where(alpha > 0, (new_y + linear(offset_y) * sy), 0.0).astype(np.float32)
    hole = nearest(solved.hole)
    fill_x = np.where(hole, np.clip(np.rint((nearest(solved.fill_x) + 0.5) * sx - 0.5), 0, width - 1), -1).astype(np.int32)
    fill_y = np.where(hole, np.clip(np.rint((nearest(solved.fill_y) + 0.5) * sy - 0.5), 0, height - 1), -1).astype(np.int32)
    return SolvedEdit(
        (height, width),
        box,
        zone=nearest(solved.zone),
        alpha=alpha.astype(np.float32),
        moving_x=moving_x,
        moving_y=moving_y,
        hole=hole,
        fill_x=fill_x,
        fill_y=fill_y,
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
    if not all(np.isfinite(arrays[key]).all() for key in ("alpha", "moving_x", "moving_y")):
        raise damaged("it holds NaN or infinite values")
    if arrays["alpha"].size and (arrays["alpha"].min() < 0 or arrays["alpha"].max() > 1):
        raise damaged("its coverage is outside [0, 1]")
    hole = arrays["hole"]
    fill_x, fill_y = arrays["fill_x"][hole], arrays["fill_y"][hole]
    if fill_x.size and (fill_x.min() < 0 or fill_x.max() >= width or fill_y.min() < 0 or fill_y.max() >= height):
        raise damaged("a fill source lies outside the image")
    if arrays["labels"].size and (np.abs(arrays["labels"]).max() > MAX_LABEL):
        raise damaged("its region ids are out of range")
    return SolvedEdit((height, width), (x0, y0, x1, y1), **arrays)


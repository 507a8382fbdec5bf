"""Region maps: integer label images (H, W) int32 whose values are region ids.

Ids carry no meaning beyond identity ("semantic-free", as in SIM-Net): region `i` of the exemplar
map is transported into region `i` of the target map. A map can be built from a flat-colour
picture (what a person paints), from a list of masks, or from a single source/target mask edit.
Label maps are only ever resized with nearest-neighbour sampling: interpolating ids invents
regions along the borders.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError

# Two painted colours closer than this (Euclidean, 0..255 RGB) are one region: anti-aliasing and
# lossy saving shift colours by a few levels.
COLOUR_TOLERANCE = 24.0


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a label map, sampling each output pixel centre.

    labels: (h, w) integer -> (height, width), same dtype, ids unchanged.
    """
    h, w = labels.shape
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


def maps_from_edit(
    source_mask: np.ndarray, target_mask: np.ndarray, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """One edit "move/reshape what `source_mask` selects into `target_mask`" as two label maps.

    source_mask, target_mask: (H, W) in [0, 1]. Returns (exemplar_labels, target_labels), each
    (H, W) int32: 1 inside the mask, 0 (the background region) elsewhere.
    """
    if source_mask.shape != target_mask.shape:
        raise InputError(
            f"the source mask is {_size(source_mask)} but the target mask is "
            f"{_size(target_mask)}: both must have the exemplar's size"
        )
    for name, mask in (("source", source_mask), ("target", target_mask)):
        selected = mask >= threshold
        if not selected.any():
            raise InputError(f"the {name} mask is empty: select the region to {_verb(name)}")
        if selected.all():
            raise InputError(
                f"the {name} mask covers the whole image: select only the region to "
                f"{_verb(name)}, so that the rest can serve as background"
            )
    return (
        (source_mask >= threshold).astype(np.int32),
        (target_mask >= threshold).astype(np.int32),
    )


def _verb(name: str) -> str:
    return "move or reshape" if name == "source" else "fill with it"


def dominant_colours(rgb: np.ndarray, min_pixels: int = 4) -> np.ndarray:
    """The flat colours a region map was painted with, without its anti-aliasing colours.

    rgb: (H, W, 3) uint8. A colour counts when it fills at least one 3x3 block (edge colours of
    anti-aliased strokes almost never do) and at least `min_pixels` pixels; colours closer than
    COLOUR_TOLERANCE to a more frequent one are folded into it. Returns (K, 3) uint8, most
    frequent first. A map too small for 3x3 blocks falls back to all of its colours.
    """
    packed = _pack(rgb)
    colours, counts = id_counts(packed)
    if min(packed.shape) >= 3:
        centre = packed[1:-1, 1:-1]
        core = np.ones(centre.shape, bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                shifted = packed[1 + dy : packed.shape[0] - 1 + dy, 1 + dx : packed.shape[1] - 1 + dx]
                core &= shifted == centre
        core_colours, _ = id_counts(centre[core])
        keep = np.isin(colours, core_colours) & (counts >= min(min_pixels, counts.max()))
        if keep.any():
            colours, counts = colours[keep], counts[keep]
    order = np.argsort(-counts, kind="stable")
    palette: list[np.ndarray] = []
    for colour in _unpack(colours[order]).astype(np.float64):
        if all(np.linalg.norm(colour - kept) >= COLOUR_TOLERANCE for kept in palette):
            palette.append(colour)
    return np.array(palette, np.uint8).reshape(-1, 3)


def labels_from_colours(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Each pixel's id is the index of the nearest palette colour. rgb (H, W, 3) uint8,
    palette (K, 3) uint8 -> (H, W) int32."""
    packed = _pack(rgb)
    colours, _ = id_counts(packed)
    distances = np.linalg.norm(
        _unpack(colours)[:, None, :].astype(np.float32) - palette[None, :, :].astype(np.float32),
        axis=2,
    )
    # A table over every 24-bit colour (np.zeros maps it lazily: only the pages of colours
    # present are touched) instead of np.unique's inverse, a full sort of the map.
    ids = np.zeros(1 << 24, np.int32)
    ids[colours] = distances.argmin(axis=1)
    return ids[packed]


def maps_from_colour_pair(
    exemplar_map: np.ndarray, target_map: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two painted region maps (each (H, W, 3) uint8) -> (exemplar_labels, target_labels,
    palette). The same colour is the same region in both; ids index the exemplar's palette.

    A colour painted in the target map that the exemplar map does not have is an error: that
    region would have nothing to be made from.
    """
    if exemplar_map.shape != target_map.shape:
        raise InputError(
            f"the exemplar map is {_size(exemplar_map)} but the target map is "
            f"{_size(target_map)}: paint both at the same size"
        )
    palette = dominant_colours(exemplar_map)
    for colour in dominant_colours(target_map).astype(np.float32):
        distance = np.linalg.norm(palette.astype(np.float32) - colour, axis=1).min()
        if distance >= COLOUR_TOLERANCE:
            raise InputError(
                f"the target map uses colour {_hex(colour)}, which the exemplar map does not "
                f"have: every colour in the target map must be one of the exemplar map's "
                f"({', '.join(_hex(c) for c in palette[:8])}{', ...' if len(palette) > 8 else ''})"
            )
    return labels_from_colours(exemplar_map, palette), labels_from_colours(target_map, palette), palette


# Label maps whose ids all lie in [0, this) are counted with bincount (one pass, no sort).
COUNTED_IDS = 1 << 20


def id_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values present in an array of integers (a label map, packed colours), ascending, and
    how often each occurs. Larger values go to np.unique's counting path, which (unlike plain
    np.unique) does not sort the whole array."""
    if labels.dtype.kind in "ui" and labels.size and labels.min() >= 0 and labels.max() < COUNTED_IDS:
        counts = np.bincount(labels.ravel())
        ids = np.flatnonzero(counts)
        return ids, counts[ids]
    return np.unique(labels, return_counts=True)


def paired_ids(exemplar_labels: np.ndarray, target_labels: np.ndarray) -> np.ndarray:
    """Ids of the target map, ascending, after checking that each exists in the exemplar map.

    Exemplar regions absent from the target simply disappear (others cover their place);
    a target region absent from the exemplar has no pixels to be made from and is an error.
    """
    if exemplar_labels.shape != target_labels.shape:
        raise InputError(
            f"the exemplar map is {_size(exemplar_labels)} but the target map is "
            f"{_size(target_labels)}"
        )
    exemplar_ids, _ = id_counts(exemplar_labels)
    target_ids, target_counts = id_counts(target_labels)
    missing = ~np.isin(target_ids, exemplar_ids)
    if missing.all():
        raise InputError(
            "no region of the target map exists in the exemplar map: the two maps must share "
            "region ids (the same colours in painted maps)"
        )
    if missing.any():
        listed = ", ".join(
            f"{i} ({n} px)" for i, n in zip(target_ids[missing][:5], target_counts[missing][:5])
        )
        raise InputError(
            f"target region(s) {listed} do not exist in the exemplar map: give them the id "
            f"(colour) of an exemplar region"
        )
    return target_ids


def distinct_palette(count: int) -> np.ndarray:
    """`count` colours far apart from each other, for writing maps a person can repaint.

    Farthest-point sampling over a 17-level RGB grid, from a strong red: each next colour is the
    grid colour farthest from all chosen ones, so any two stay well beyond COLOUR_TOLERANCE
    (about 50 apart at 128 colours). Deterministic. Returns (count, 3) uint8.
    """
    levels = np.linspace(0.0, 255.0, 17)
    candidates = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    if count > len(candidates):
        raise InputError(f"cannot draw {count} distinguishable colours; merge regions first")
    chosen = [int(np.argmin(np.linalg.norm(candidates - [230, 30, 30], axis=1)))]
    nearest = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)
    for _ in range(count - 1):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[chosen[-1]], axis=1))
    return np.round(candidates[chosen]).astype(np.uint8)


def colour_map(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Label map (H, W) -> flat-colour picture (H, W, 3) uint8 (ids index the palette)."""
    if palette is None:
        palette = distinct_palette(int(labels.max()) + 1)
    return palette[labels]


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint32 R << 16 | G << 8 | B: the bytes B, G, R, A of OpenCV's
    BGRA read as one little-endian word, alpha masked off (one threaded pass, no uint32 copies
    of each channel)."""
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2BGRA)
    packed = bgra.view("<u4").reshape(rgb.shape[:2])
    return np.bitwise_and(packed, np.uint32(0xFFFFFF), out=packed).astype(np.uint32, copy=False)


def _unpack(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1)


def _hex(colour: np.ndarray) -> str:
    return "#" + "".join(f"{int(np.rint(c)):02x}" for c in colour)


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"

"""Automatic semantic-free region maps for paintings.

Felzenszwalb's graph segmentation on a copy at most `work_size` pixels on its long side (the most
SAM-like classical method on paintings: sky, buildings, figures), labels scaled back with
nearest-neighbour, then regions smaller than `min_share` of the image merged into the neighbour
they share the longest border with, smallest first, optionally until at most `max_regions` stay.
Ids run from 0 in decreasing order of area.

With alpha, the transparent pixels (alpha under TRANSPARENT) are one region of their own and
only the opaque part is segmented: the colours under alpha 0 are whatever the file holds, often
junk, so the copy gives those pixels the colour of the nearest opaque one, and no opaque region
is merged into the transparent one.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb

from .errors import InputError
from .fill import nearest_pixel
from .io.pixels import rgb_channels
from .regions import resize_labels

WORK_SIZE = 512
# Alpha under this is transparent (an anti-aliased edge's half-covered pixels count as opaque).
TRANSPARENT = 0.5


def segment(
    pixels: np.ndarray,
    work_size: int = WORK_SIZE,
    scale: float = 300.0,
    sigma: float = 0.8,
    min_size: int = 500,
    min_share: float = 0.015,
    max_regions: int | None = None,
) -> np.ndarray:
    """Engine pixels (H, W, C) -> region map (H, W) int32, ids 0..n-1 by decreasing area.

    `min_size` is in pixels of a `work_size` x `work_size` copy; it scales with the copy's area.
    """
    if max_regions is not None and max_regions < 1:
        raise InputError("the maximum region count must be at least 1")
    height, width = pixels.shape[:2]
    factor = min(1.0, work_size / max(height, width))
    small_h, small_w = max(1, round(height * factor)), max(1, round(width * factor))
    rgb = np.clip(rgb_channels(pixels), 0, 1)
    transparent = pixels[:, :, -1] < TRANSPARENT if pixels.shape[2] in (2, 4) else None
    if transparent is not None and not transparent.any():
        transparent = None
    if transparent is not None:
        if transparent.all():
            return np.zeros((height, width), np.int32)
        rgb = rgb.reshape(-1, 3)[nearest_pixel(~transparent)]
    small = cv2.resize(rgb, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small = small.reshape(small_h, small_w, 3)
    area_scale = small_h * small_w / float(work_size * work_size)
    labels = felzenszwalb(small, scale=scale, sigma=sigma, min_size=max(1, int(min_size * area_scale)))
    if transparent is None:
        labels = merge_small_regions(labels, int(min_share * labels.size), max_regions)
        return resize_labels(labels, height, width)
    # the transparent region, at full resolution, over opaque regions grown into it
    small_transparent = resize_labels(transparent.view(np.uint8), small_h, small_w).view(bool)
    if small_transparent.all():  # a few opaque pixels, lost in the copy: one region of them
        labels = np.zeros((height, width), np.int32)
    else:
        labels = np.where(small_transparent, labels.max() + 1, labels)
        labels = merge_small_regions(labels, int(min_share * labels.size), max_regions, fixed=int(labels.max()))
        apart = int(labels[small_transparent][0])
        labels = resize_labels(labels.ravel()[nearest_pixel(labels != apart)], height, width)
    labels[transparent] = labels.max() + 1
    return _by_area(labels)


def _by_area(labels: np.ndarray) -> np.ndarray:
    """A label map (H, W) renumbered 0..n-1 by decreasing area, int32."""
    _, dense = np.unique(labels, return_inverse=True)
    dense = dense.reshape(labels.shape)
    order = np.argsort(-np.bincount(dense.ravel()), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[dense].astype(np.int32)


def merge_small_regions(
    labels: np.ndarray, min_pixels: int, max_regions: int | None = None, fixed: int | None = None
) -> np.ndarray:
    """Merge regions under `min_pixels` (and, past `max_regions`, the smallest ones) into the
    neighbour sharing the longest border. (H, W) int -> (H, W) int32 relabelled 0..n-1 by
    decreasing area. A region with no neighbour (the only one) is kept. The region `fixed`, if
    given, is never merged, and nothing is merged into it."""
    ids, inverse = np.unique(labels, return_inverse=True)
    labels = inverse.reshape(labels.shape)
    count = len(ids)
    kept = set() if fixed is None else {int(np.searchsorted(ids, fixed))}
    area = np.bincount(labels.ravel(), minlength=count).astype(np.int64)
    border = _border_lengths(labels, count)
    parent = np.arange(count)
    alive = set(range(count))

    def must_merge(region: int) -> bool:
        too_many = max_regions is not None and len(alive) > max_regions
        return area[region] < min_pixels or too_many

    while len(alive) > 1 and alive - kept:
        smallest = min(alive - kept, key=lambda r: (area[r], r))
        if not must_merge(smallest):
            break
        neighbours = {r: n for r, n in border.get(smallest, {}).items() if r not in kept}
        if not neighbours:
            kept.add(smallest)  # it touches nothing it may join
            continue
        into = max(neighbours, key=lambda r: (neighbours[r], area[r]))
        _merge(border, area, smallest, into)
        parent[smallest] = into
        alive.discard(smallest)
    roots = np.array([_root(parent, r) for r in range(count)])
    return _by_area(roots[labels])


def _border_lengths(labels: np.ndarray, count: int) -> dict[int, dict[int, int]]:
    sides = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        differ = a != b
        sides.append(np.stack([a[differ], b[differ]], axis=1))
    pairs = np.sort(np.concatenate(sides), axis=1)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    border: dict[int, dict[int, int]] = {}
    for (a, b), n in zip(unique.tolist(), counts.tolist()):
        border.setdefault(a, {})[b] = n
        border.setdefault(b, {})[a] = n
    return border


def _merge(border: dict[int, dict[int, int]], area: np.ndarray, source: int, into: int) -> None:
    area[into] += area[source]
    for neighbour, length in border.pop(source, {}).items():
        border[neighbour].pop(source, None)
        if neighbour != into:
            border[into][neighbour] = border[into].get(neighbour, 0) + length
            border[neighbour][into] = border[neighbour].get(into, 0) + length


def _root(parent: np.ndarray, region: int) -> int:
    while parent[region] != region:
        region = parent[region]
    return region

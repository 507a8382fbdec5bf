"""The two inner loops of the fill, compiled: PatchMatch's search (Barnes et al. 2009) and the
patch vote of space-time completion (Wexler et al. 2007), over one level's hole.

They are per-pixel loops with a data-dependent order (a pixel's search starts from what its
neighbour just found), which numpy cannot express without many whole-array passes; numba
compiles them once and caches the machine code beside this file (or in the user's cache).

Conventions shared by both, for one level of size (h, w) with C channels:
- image (h, w, C) float32: the picture with its hole's current guess;
- weight (h, w) float32: each pixel's confidence (known 1, a guess less);
- target (h, w) int32: the label each pixel has (or becomes, in the hole);
- exemplar (h, w, C) float32 and exemplar_labels (h, w) int32: where sources come from;
- sources (h, w) int32: the label a source centre may serve, or -1 (a region's interior);
- rows, cols (n,) int64: the hole pixels; index (h, w) int64: each one's slot, -1 elsewhere;
- field (n, 2) int64: each hole pixel's source centre (y, x); cost (n,) float64: its distance.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba
import numpy as np
from numba import njit as _njit
from numba import prange


def _cache_ready() -> bool:
    """Whether numba can keep the compiled loops on disk: beside this file, or where that is
    read-only (a system-wide install, a read-only mount) in the user's cache or a temporary
    folder. numba itself refuses to load a cached function it has nowhere to write; without any
    writable folder the loops are compiled in memory in every process instead (a few seconds)."""
    if numba.config.CACHE_DIR:  # type: ignore[attr-defined]  # NUMBA_CACHE_DIR: the user's choice
        return True
    beside = Path(__file__).resolve().parent / "__pycache__"
    if os.access(beside if beside.is_dir() else beside.parent, os.W_OK):
        return True
    try:
        user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "simnet-manipulate" / "numba"
    except RuntimeError:  # no home folder
        user = None
    try:
        uid = getattr(os, "getuid", lambda: 0)()
        temporary: Path | None = Path(tempfile.gettempdir()) / f"simnet-manipulate-numba-{uid}"
    except OSError:  # no writable temporary folder either
        temporary = None
    for folder in (user, temporary):
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]  # read as each function's cache is set up
            return True
    return False


_CACHE = _cache_ready()


def njit(*args, **options):
    """numba's njit, cached on disk where `_cache_ready` found a folder."""
    return _njit(*args, cache=_CACHE, **options)


def set_threads(count: int) -> None:
    """Run the parallel loops on `count` threads (at most numba's pool)."""
    pool = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set when numba loads its config
    numba.set_num_threads(max(1, min(count, pool)))


@njit(nogil=True)
def patch_distance(image, weight, target, exemplar, exemplar_labels, y, x, sy, sx, radius, label_cost, travel_cost,
                   best=np.inf, patch_weight=0.0):
    """D(p, q) for p = (y, x) and q = (sy, sx): the confidence-weighted mean over the patch's
    offsets inside both images of [same label as p] |image - exemplar|^2 + label_cost [labels
    differ], plus travel_cost (|q - p| / side)^2.

    With `best` and patch_weight (p's weights summed over its offsets inside the image, see
    `patch_weights`) it stops as soon as D is sure not to beat best, and returns a value that
    does not: the running sum over patch_weight is a lower bound of the mean."""
    h, w, channels = image.shape
    own = target[y, x]
    side = max(h, w)
    travel = travel_cost * ((sy - y) ** 2 + (sx - x) ** 2) / (side * side)
    limit = (best - travel) * patch_weight
    total = 0.0
    weights = 0.0
    for oy in range(-radius, radius + 1):
        py, qy = y + oy, sy + oy
        if py < 0 or py >= h or qy < 0 or qy >= h:
            continue
        for ox in range(-radius, radius + 1):
            px, qx = x + ox, sx + ox
            if px < 0 or px >= w or qx < 0 or qx >= w:
                continue
            pixel_weight = weight[py, px]
            label = target[py, px]
            cost = 0.0
            # colours count only within p's own region: a neighbour says where edges go
            if label == own:
                for c in range(channels):
                    d = image[py, px, c] - exemplar[qy, qx, c]
                    cost += d * d
            if exemplar_labels[qy, qx] != label:
                cost += label_cost
            total += pixel_weight * cost
            weights += pixel_weight
        if patch_weight > 0 and total >= limit:
            return best
    return total / max(weights, 1e-6) + travel


@njit(nogil=True)
def patch_weights(weight, rows, cols, radius):
    """Each hole pixel's weights summed over its patch's offsets inside the image -> (n,)."""
    h, w = weight.shape
    out = np.zeros(rows.size, np.float64)
    for i in range(rows.size):
        for py in range(max(0, rows[i] - radius), min(h, rows[i] + radius + 1)):
            for px in range(max(0, cols[i] - radius), min(w, cols[i] + radius + 1)):
                out[i] += weight[py, px]
    return out


@njit(nogil=True)
def _allowed(sources, sy, sx, label):
    h, w = sources.shape
    return 0 <= sy < h and 0 <= sx < w and sources[sy, sx] == label


@njit(nogil=True, parallel=True)
def costs(image, weight, target, exemplar, exemplar_labels, rows, cols, field, radius, label_cost, travel_cost):
    """Every hole pixel's distance to its current source -> (n,) float64."""
    n = rows.size
    out = np.empty(n, np.float64)
    for i in prange(n):
        out[i] = patch_distance(image, weight, target, exemplar, exemplar_labels, rows[i], cols[i],
                                field[i, 0], field[i, 1], radius, label_cost, travel_cost)
    return out


@njit(nogil=True, parallel=True)
def search(image, weight, target, exemplar, exemplar_labels, sources, rows, cols, index, field, cost, patch_weight,
           band_start, candidates, candidate_start, candidate_count, slot, passes, search_radius, radius,
           label_cost, travel_cost, seed):
    """`passes` PatchMatch iterations over the hole, in place on field and cost.

    The hole pixels (in raster order) are cut into bands, band k being the pixels
    band_start[k] : band_start[k + 1]; bands run in parallel, each in scan order (odd passes
    backwards) with its own random stream seeded from (seed, k), so the result does not depend
    on the thread count. Each pixel tries its two already-visited neighbours' sources (in its
    band) shifted by one (propagation), then random sources at radii halving from
    search_radius, then one random source of its own region anywhere:
    candidates[candidate_start[k] : + candidate_count[k]] are the flat exemplar indices serving
    region slot k, and slot (n,) is each hole pixel's. patch_weight (n,) is from
    `patch_weights`."""
    h, w = sources.shape
    for band in prange(band_start.size - 1):
        first, stop = band_start[band], band_start[band + 1]
        np.random.seed(seed * 7919 + band)
        for step in range(passes):
            backwards = step % 2 == 1
            direction = -1 if backwards else 1
            for order in range(stop - first):
                i = stop - 1 - order if backwards else first + order
                _improve_pixel(image, weight, target, exemplar, exemplar_labels, sources, rows, cols, index, field,
                               cost, patch_weight, candidates, candidate_start, candidate_count, slot, i, direction,
                               first, stop, search_radius, radius, label_cost, travel_cost, h, w)


@njit(nogil=True)
def _improve_pixel(image, weight, target, exemplar, exemplar_labels, sources, rows, cols, index, field, cost,
                   patch_weight, candidates, candidate_start, candidate_count, slot, i, direction, first, stop,
                   search_radius, radius, label_cost, travel_cost, h, w):
    """One hole pixel's PatchMatch step (see `search`); neighbours outside first : stop are
    another band's and are not read."""
    y, x = rows[i], cols[i]
    label = target[y, x]
    best_y, best_x, best = field[i, 0], field[i, 1], cost[i]
    for neighbour_y, neighbour_x in ((y, x - direction), (y - direction, x)):
        if neighbour_y < 0 or neighbour_y >= h or neighbour_x < 0 or neighbour_x >= w:
            continue
        j = index[neighbour_y, neighbour_x]
        if j < first or j >= stop:
            continue
        sy = field[j, 0] + (y - neighbour_y)
        sx = field[j, 1] + (x - neighbour_x)
        if (sy != best_y or sx != best_x) and _allowed(sources, sy, sx, label):
            d = patch_distance(image, weight, target, exemplar, exemplar_labels, y, x, sy, sx, radius,
                               label_cost, travel_cost, best, patch_weight[i])
            if d < best:
                best_y, best_x, best = sy, sx, d
    # random search around the best so far, radius halving
    reach = search_radius
    while reach >= 1.0:
        r = int(reach)
        sy = best_y + np.random.randint(-r, r + 1)
        sx = best_x + np.random.randint(-r, r + 1)
        if _allowed(sources, sy, sx, label):
            d = patch_distance(image, weight, target, exemplar, exemplar_labels, y, x, sy, sx, radius,
                               label_cost, travel_cost, best, patch_weight[i])
            if d < best:
                best_y, best_x, best = sy, sx, d
        reach /= 2.0
    # and one anywhere in the region, so that no pixel is stuck in a poor basin
    k = slot[i]
    pick = candidates[candidate_start[k] + np.random.randint(0, candidate_count[k])]
    sy, sx = pick // w, pick % w
    d = patch_distance(image, weight, target, exemplar, exemplar_labels, y, x, sy, sx, radius,
                       label_cost, travel_cost, best, patch_weight[i])
    if d < best:
        best_y, best_x, best = sy, sx, d
    field[i, 0], field[i, 1], cost[i] = best_y, best_x, best


@njit(nogil=True, parallel=True)
def vote(exemplar, exemplar_labels, target, rows, cols, index, field, strength, radius):
    """Each hole pixel as the weighted mean of the patches over it -> (n, C) float32: the patch
    centred on hole pixel c gives pixel p = c + o the colour of field[c] + o, with weight
    strength[c], counted only where that source pixel is of p's own region. A pixel no vote
    reaches gets its own centre's source. Gathered per pixel, so pixels run in parallel."""
    h, w, channels = exemplar.shape
    n = rows.size
    out = np.empty((n, channels), np.float32)
    for j in prange(n):
        y, x = rows[j], cols[j]
        own = target[y, x]
        total = np.zeros(channels, np.float64)
        count = 0.0
        for oy in range(-radius, radius + 1):
            cy = y - oy
            if cy < 0 or cy >= h:
                continue
            for ox in range(-radius, radius + 1):
                cx = x - ox
                if cx < 0 or cx >= w:
                    continue
                c = index[cy, cx]
                if c < 0:
                    continue
                qy, qx = field[c, 0] + oy, field[c, 1] + ox
                if qy < 0 or qy >= h or qx < 0 or qx >= w or exemplar_labels[qy, qx] != own:
                    continue
                s = strength[c]
                for k in range(channels):
                    total[k] += s * exemplar[qy, qx, k]
                count += s
        if count > 0:
            for k in range(channels):
                out[j, k] = total[k] / count
        else:
            for k in range(channels):
                out[j, k] = exemplar[field[j, 0], field[j, 1], k]
    return out


@njit(nogil=True, parallel=True)
def cohere(image, weight, target, exemplar, exemplar_labels, sources, rows, cols, index, field, cost, radius,
           label_cost, travel_cost, tolerance):
    """One round of coherence: each hole pixel takes the offset most of its 8 neighbours share,
    when that offset's patch distance here is within (1 + tolerance) of its own -> (field, cost)
    new arrays (read from the old ones, so the result does not depend on the order)."""
    h, w = sources.shape
    n = rows.size
    out_field = field.copy()
    out_cost = cost.copy()
    for i in prange(n):
        y, x = rows[i], cols[i]
        label = target[y, x]
        own_dy, own_dx = field[i, 0] - y, field[i, 1] - x
        best_votes = 0
        best_dy, best_dx = own_dy, own_dx
        # votes for each neighbour's offset among all 8 neighbours (the pixel's own offset too)
        for a in range(9):
            ay, ax = y + a // 3 - 1, x + a % 3 - 1
            if ay < 0 or ay >= h or ax < 0 or ax >= w:
                continue
            j = index[ay, ax]
            if j < 0:
                continue
            dy, dx = field[j, 0] - ay, field[j, 1] - ax
            votes = 0
            for b in range(9):
                by, bx = y + b // 3 - 1, x + b % 3 - 1
                if by < 0 or by >= h or bx < 0 or bx >= w:
                    continue
                k = index[by, bx]
                if k >= 0 and field[k, 0] - by == dy and field[k, 1] - bx == dx:
                    votes += 1
            if votes > best_votes:
                best_votes, best_dy, best_dx = votes, dy, dx
        if best_dy == own_dy and best_dx == own_dx:
            continue
        sy, sx = y + best_dy, x + best_dx
        if not _allowed(sources, sy, sx, label):
            continue
        d = patch_distance(image, weight, target, exemplar, exemplar_labels, y, x, sy, sx, radius, label_cost,
                           travel_cost)
        if d <= cost[i] * (1.0 + tolerance):
            out_field[i, 0], out_field[i, 1], out_cost[i] = sy, sx, d
    return out_field, out_cost

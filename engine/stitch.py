"""Gradient-domain stitching of a shift-map fill: a seam between copied patches that the
painting's own brushwork does not explain (a tone step across a smooth sky) is spread out
smoothly instead of left as an edge.

A fill copies each hole pixel p from an exemplar pixel s(p). Inside one copied patch the
copy's gradients are the painting's own; across a seam (where s jumps) they are not. The
stitched colours f minimise, per channel,

    sum over 4-neighbour pairs (p, q) of the same target region, p in the hole:
        (f(p) - f(q) - g(p, q))^2
  + SCREENING * sum over hole pixels p: (f(p) - f0(p))^2

where f0 is the fill as copied and q outside the hole is the picture's known pixel (g: the
gradient under p's copy). For two hole pixels, g is the step the copy already has, unless
the step is a visible seam: it differs from what the two sources' gradients say there (their
mean) by more than SEAM_RATIO times as much as those two disagree with each other. Then g is
that mean. Across a smooth gradient both sources agree, so a tone step between them melts
away; in textured brushwork two unrelated sources disagree about as much as the step they
make, so every copied pixel keeps its contrast (averaging two textures would blur them). The
screening term (screened Poisson, Bhat et al. 2008) keeps the fill's own tone at scales
beyond about 1 / sqrt(SCREENING) pixels and makes every region's system solvable, even one
that no known pixel touches. Solved by Jacobi-preconditioned conjugate gradients started
from f0, compiled (numba) because it runs on every full-resolution hole pixel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import prange

from .patchmatch import njit

SCREENING = 0.01
ITERATIONS = 60
# A step between two copied pixels is a seam to melt when its error is more than this many
# times the sources' disagreement. Tuned on the tuning paintings' vacate edits: 2 blurs
# brushwork (perceptual distance 1% higher), 4 does not.
SEAM_RATIO = 4.0


Sampler = Callable[[np.ndarray, np.ndarray], np.ndarray]


def stitch(
    shape: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
    colours: np.ndarray,
    source_y: np.ndarray,
    source_x: np.ndarray,
    label_at: Sampler,
    picture_at: Sampler,
    exemplar_at: Sampler,
    alpha: int | None = None,
) -> np.ndarray:
    """Stitched colours (N, C) float32 of the hole pixels (rows, cols (N,)) of an image of
    `shape` (H, W), given their copied colours (N, C) and their sources (source_y, source_x
    (N,)). The samplers take pixel coordinates (y, x (n,)) inside the image: label_at gives the
    target region of each (n,) int (-1: not to be joined), picture_at the picture's known colour
    there (only asked outside the hole), exemplar_at the exemplar's, both (n, C). With `alpha`
    (the channel of a premultiplied alpha) a known pixel joins in proportion to the lesser of its
    alpha and that of what the copy would put there: ink beside a transparent fill is not pulled
    into it.

    Every step is linear in the pictures but the choice of which steps are seams, and that
    choice does not change when both are scaled: stitching a picture at half strength gives
    half the result."""
    height, width = shape
    count = rows.size
    # float32 throughout: a full-resolution hole can be millions of pixels
    f0 = colours.astype(np.float32)
    if count == 0:
        return f0
    y0, x0 = int(rows.min()), int(cols.min())
    y1, x1 = int(rows.max()) + 1, int(cols.max()) + 1
    index = np.full((y1 - y0 + 2, x1 - x0 + 2), -1, np.int64)  # one pixel of margin all round
    index[rows - y0 + 1, cols - x0 + 1] = np.arange(count)
    own = label_at(rows, cols)
    at_source = exemplar_at(source_y, source_x).astype(np.float32)
    neighbours = np.full((count, 4), -1, np.int32)
    diagonal = np.full(count, SCREENING, np.float32)
    rhs = np.float32(SCREENING) * f0
    for k, (dy, dx) in enumerate(((0, 1), (1, 0), (0, -1), (-1, 0))):
        ny, nx = rows + dy, cols + dx
        inside = np.flatnonzero((ny >= 0) & (ny < height) & (nx >= 0) & (nx < width))
        same = np.zeros(count, bool)
        same[inside] = (label_at(ny[inside], nx[inside]) == own[inside]) & (own[inside] >= 0)
        neighbour = np.full(count, -1, np.int64)
        neighbour[inside] = index[ny[inside] - y0 + 1, nx[inside] - x0 + 1]
        # the gradient under p's own copy: f(p) - f(q) as the exemplar has it there
        beside = exemplar_at(np.clip(source_y + dy, 0, height - 1), np.clip(source_x + dx, 0, width - 1))
        mine = at_source - beside
        known = np.flatnonzero(same & (neighbour < 0))
        outside = picture_at(ny[known], nx[known])
        if alpha is None:
            diagonal[known] += 1.0
            rhs[known] += outside + mine[known]
        else:
            weight = np.minimum(outside[:, alpha], beside[known, alpha])
            diagonal[known] += weight
            rhs[known] += weight[:, None] * (outside + mine[known])
        p = np.flatnonzero(same & (neighbour >= 0))
        q = neighbour[p]
        neighbours[p, k] = q
        diagonal[p] += 1.0
        # what q's copy says about the same step: its source and the source pixel before it
        before = exemplar_at(np.clip(source_y[q] - dy, 0, height - 1), np.clip(source_x[q] - dx, 0, width - 1))
        theirs = before - at_source[q]
        copied = f0[p] - f0[q]
        mean = 0.5 * (mine[p] + theirs)
        disagreement = np.abs(mine[p] - theirs).max(axis=1)
        seam = np.abs(copied - mean).max(axis=1) > SEAM_RATIO * disagreement
        rhs[p] += np.where(seam[:, None], mean, copied)
    return _conjugate_gradients(neighbours, diagonal, rhs, f0, ITERATIONS)


def image_sampler(image: np.ndarray) -> Sampler:
    """A sampler of an array (H, W[, C]) at pixel coordinates."""
    return lambda y, x: image[y, x]


@njit(nogil=True, parallel=True)
def _apply(neighbours, diagonal, f, out):
    """out = A f, A = diag - adjacency (each pair is listed from both of its pixels)."""
    n, channels = f.shape
    for i in prange(n):
        for c in range(channels):
            total = diagonal[i] * f[i, c]
            for k in range(4):
                j = neighbours[i, k]
                if j >= 0:
                    total -= f[j, c]
            out[i, c] = total


@njit(nogil=True, parallel=True)
def _dot(a, b, c):
    total = 0.0
    for i in prange(a.shape[0]):
        total += a[i, c] * b[i, c]
    return total


@njit(nogil=True, parallel=True)
def _conjugate_gradients(neighbours, diagonal, rhs, start, iterations):
    """A f = rhs by Jacobi-preconditioned conjugate gradients from `start`, every channel at
    once (each its own step sizes) -> f (n, C), of rhs's type (products summed in float64)."""
    n, channels = rhs.shape
    f = start.copy()
    product = np.empty_like(f)
    _apply(neighbours, diagonal, f, product)
    residual = rhs - product
    z = residual / diagonal.reshape(n, 1)
    direction = z.copy()
    rz = np.empty(channels, np.float64)
    for c in range(channels):
        rz[c] = _dot(residual, z, c)
    for _ in range(iterations):
        _apply(neighbours, diagonal, direction, product)
        for c in range(channels):
            curvature = _dot(direction, product, c)
            if curvature <= 1e-30:
                continue
            step = rz[c] / curvature
            for i in prange(n):
                f[i, c] += step * direction[i, c]
                residual[i, c] -= step * product[i, c]
                z[i, c] = residual[i, c] / diagonal[i]
            rz_next = _dot(residual, z, c)
            beta = rz_next / max(rz[c], 1e-30)
            for i in prange(n):
                direction[i, c] = z[i, c] + beta * direction[i, c]
            rz[c] = rz_next
    return f

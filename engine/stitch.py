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
# Conjugate-gradient iterations: the seams are local and the screening holds the rest, so few
# are needed (30 and 60 leave the same largest step, to 1e-5, on a smooth gradient).
ITERATIONS = 30
# A step between two copied pixels is a seam to melt when its error is more than this many
# times the sources' disagreement. Tuned on the tuning paintings' vacate edits: 2 blurs
# brushwork (perceptual distance 1% higher), 4 does not.
SEAM_RATIO = 4.0
# A hole pixel's neighbour that is not joined to it (outside the image, or of another region).
NOT_JOINED = -2


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
    # float32 throughout, and the solve in place on a copy: a full-resolution hole can be
    # millions of pixels
    f0 = np.array(colours, np.float32)
    if count == 0:
        return f0
    y0, x0 = int(rows.min()), int(cols.min())
    y1, x1 = int(rows.max()) + 1, int(cols.max()) + 1
    index = np.full((y1 - y0 + 2, x1 - x0 + 2), -1, np.int32)  # one pixel of margin all round
    index[rows - y0 + 1, cols - x0 + 1] = np.arange(count)
    own = label_at(rows, cols)
    at_source = np.ascontiguousarray(exemplar_at(source_y, source_x), np.float32)
    neighbours = np.full((count, 4), -1, np.int32)
    diagonal = np.full(count, SCREENING, np.float32)
    rhs = np.float32(SCREENING) * f0
    for k, (dy, dx) in enumerate(((0, 1), (1, 0), (0, -1), (-1, 0))):
        ny, nx = rows + dy, cols + dx
        inside = np.flatnonzero((ny >= 0) & (ny < height) & (nx >= 0) & (nx < width))
        same = np.zeros(count, bool)
        same[inside] = (label_at(ny[inside], nx[inside]) == own[inside]) & (own[inside] >= 0)
        neighbour = np.full(count, NOT_JOINED, np.int32)
        neighbour[inside] = index[ny[inside] - y0 + 1, nx[inside] - x0 + 1]  # -1: known
        neighbour[~same] = NOT_JOINED
        known = np.flatnonzero(neighbour == -1)
        outside = np.zeros_like(f0)
        outside[known] = picture_at(ny[known], nx[known])
        # what p's copy puts beside it, and the pixel before q's source (q's copy of the same step)
        beside = exemplar_at(np.clip(source_y + dy, 0, height - 1), np.clip(source_x + dx, 0, width - 1))
        q = np.maximum(neighbour, 0)
        before = exemplar_at(np.clip(source_y[q] - dy, 0, height - 1), np.clip(source_x[q] - dx, 0, width - 1))
        _add_terms(k, neighbour, np.ascontiguousarray(beside, np.float32), np.ascontiguousarray(before, np.float32),
                   outside, at_source, f0, diagonal, rhs, neighbours, -1 if alpha is None else alpha, SEAM_RATIO)
    return _conjugate_gradients(neighbours, diagonal, rhs, f0, ITERATIONS)


@njit(nogil=True, parallel=True)
def _add_terms(k, neighbour, beside, before, outside, at_source, f0, diagonal, rhs, neighbours, alpha, ratio):
    """One direction's terms, in place on diagonal (n,), rhs (n, C) and neighbours (n, 4):
    neighbour (n,) is the hole pixel beside each (or -1: a known pixel, NOT_JOINED: none),
    beside (n, C) the exemplar beside each one's source, before (n, C) the exemplar before the
    neighbour's source, outside (n, C) the known pixel, at_source (n, C) each source's colour."""
    n, channels = f0.shape
    for i in prange(n):
        j = neighbour[i]
        if j == -1:  # a known pixel: f(i) - known = the copy's own step
            weight = 1.0 if alpha < 0 else min(outside[i, alpha], beside[i, alpha])
            diagonal[i] += weight
            for c in range(channels):
                rhs[i, c] += weight * (outside[i, c] + at_source[i, c] - beside[i, c])
        elif j >= 0:
            neighbours[i, k] = j
            diagonal[i] += 1.0
            error = 0.0
            disagreement = 0.0
            for c in range(channels):
                mine = at_source[i, c] - beside[i, c]
                theirs = before[i, c] - at_source[j, c]
                mean = 0.5 * (mine + theirs)
                error = max(error, abs(f0[i, c] - f0[j, c] - mean))
                disagreement = max(disagreement, abs(mine - theirs))
            seam = error > ratio * disagreement
            for c in range(channels):
                if seam:
                    rhs[i, c] += 0.5 * (at_source[i, c] - beside[i, c] + before[i, c] - at_source[j, c])
                else:
                    rhs[i, c] += f0[i, c] - f0[j, c]


def image_sampler(image: np.ndarray) -> Sampler:
    """A sampler of an array (H, W[, C]) at pixel coordinates."""
    return lambda y, x: image[y, x]


# The solver's loops run over the hole in this many chunks, each summing its own part of the
# dot products (numba's parallel loops reduce scalars, not arrays).
CHUNKS = 64


@njit(nogil=True)
def _chunk(chunk, n, partial):
    """The pixels (start, stop) of `chunk` of n, with its row of partial sums cleared."""
    step = -(-n // CHUNKS)
    partial[chunk, :] = 0.0
    return chunk * step, min(n, (chunk + 1) * step)


@njit(nogil=True, parallel=True)
def _apply(neighbours, diagonal, f, out, partial):
    """out = A f (A = diag - adjacency; each pair is listed from both of its pixels), and each
    chunk's share of f . out per channel into partial (CHUNKS, C)."""
    n, channels = f.shape
    for chunk in prange(CHUNKS):
        start, stop = _chunk(chunk, n, partial)
        for i in range(start, stop):
            for c in range(channels):
                total = diagonal[i] * f[i, c]
                for k in range(4):
                    j = neighbours[i, k]
                    if j >= 0:
                        total -= f[j, c]
                out[i, c] = total
                partial[chunk, c] += f[i, c] * total


@njit(nogil=True, parallel=True)
def _advance(f, residual, direction, product, diagonal, step_size, partial):
    """f += step d, r -= step A d, and each chunk's share of r . (r / diag) per channel."""
    n, channels = f.shape
    for chunk in prange(CHUNKS):
        start, stop = _chunk(chunk, n, partial)
        for i in range(start, stop):
            for c in range(channels):
                f[i, c] += step_size[c] * direction[i, c]
                residual[i, c] -= step_size[c] * product[i, c]
                partial[chunk, c] += residual[i, c] * residual[i, c] / diagonal[i]


@njit(nogil=True, parallel=True)
def _turn(direction, residual, diagonal, beta):
    """direction = r / diag + beta direction, per channel."""
    n, channels = residual.shape
    for i in prange(n):
        for c in range(channels):
            direction[i, c] = residual[i, c] / diagonal[i] + beta[c] * direction[i, c]


@njit(nogil=True)
def _conjugate_gradients(neighbours, diagonal, rhs, f, iterations):
    """A f = rhs by Jacobi-preconditioned conjugate gradients, in place on f (n, C) (the start)
    and on rhs (which becomes the residual), every channel at once with its own step sizes
    (dot products in float64); four (n, C) arrays in all, since a hole can be millions of
    pixels. Returns f."""
    n, channels = rhs.shape
    product = np.empty_like(f)
    partial = np.zeros((CHUNKS, channels), np.float64)
    _apply(neighbours, diagonal, f, product, partial)
    residual = rhs
    residual -= product
    direction = np.zeros_like(f)
    beta = np.zeros(channels, np.float64)
    _turn(direction, residual, diagonal, beta)  # the preconditioned residual
    rz = np.zeros(channels, np.float64)
    for i in range(n):
        for c in range(channels):
            rz[c] += residual[i, c] * direction[i, c]
    step_size = np.zeros(channels, np.float64)
    for _ in range(iterations):
        _apply(neighbours, diagonal, direction, product, partial)
        curvature = partial.sum(axis=0)
        for c in range(channels):
            step_size[c] = rz[c] / curvature[c] if curvature[c] > 1e-30 else 0.0
        _advance(f, residual, direction, product, diagonal, step_size, partial)
        rz_next = partial.sum(axis=0)
        for c in range(channels):
            beta[c] = rz_next[c] / rz[c] if rz[c] > 1e-30 else 0.0
        rz = rz_next
        _turn(direction, residual, diagonal, beta)
    return f

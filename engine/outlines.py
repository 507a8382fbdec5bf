"""Outline correspondence: which point of an exemplar region's outline each point of its target
outline came from, for non-rigid reshapes.

1. Each outline is the region's largest outer contour, resampled to `count` points equally
   spaced by arc length, in OpenCV's contour order.
2. A prior affine (a model's motion: it carries the region's move, turn and scale) takes the
   target outline into the exemplar's frame, so what is left to match is the reshape itself.
3. The cyclic shift that best lines the two point sequences up fixes the start. Either that
   is the match (point i with point i + shift: arc length kept, right for a bend, where every
   part of the outline keeps its length), or dynamic time warping then pairs them
   monotonically, minimising the summed squared distance, so a part that was stretched (a
   raised peak) takes more target points than it had exemplar points instead of sliding the
   whole outline round.
"""

from __future__ import annotations

import cv2
import numpy as np

from .masks import region_box


def outline(mask: np.ndarray, count: int) -> np.ndarray | None:
    """The largest outer contour of mask (H, W) bool, `count` points (count, 2) equally spaced
    by arc length, pixel coordinates; None when the region has no contour of 3 or more points."""
    x0, y0, x1, y1 = region_box(mask, margin=1)
    contours, _ = cv2.findContours(mask[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    points = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64) + [x0, y0]
    if len(points) < 3:
        return None
    closed = np.vstack([points, points[:1]])
    lengths = np.hypot(*np.diff(closed, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    wanted = np.arange(count) * along[-1] / count
    return np.stack([np.interp(wanted, along, closed[:, 0]), np.interp(wanted, along, closed[:, 1])], axis=1)


def best_shift(moved: np.ndarray, source: np.ndarray) -> int:
    """The cyclic shift s minimising sum_i |moved_i - source_(i+s)|^2 for two (N, 2) point
    sequences of the same length."""
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, and the cross term over all shifts is a circular
    # correlation, done by FFT
    cross = sum(np.fft.ifft(np.conj(np.fft.fft(moved[:, k])) * np.fft.fft(source[:, k])).real for k in range(2))
    return int(np.argmax(cross))


def warp_pairs(moved: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Dynamic time warping of two open point sequences (N, 2) and (M, 2), first points paired,
    the last of `moved` paired with the last or the last but one of `source` (the last is a
    closing copy of the first in `match_outlines_ordered`): for each point of `moved`, the mean
    index (N,) float of the `source` points it is paired with, non-decreasing."""
    n, m = len(moved), len(source)
    distance = ((moved[:, None, :] - source[None, :, :]) ** 2).sum(-1)
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        row = distance[i - 1]
        # diagonal and vertical steps in one go, then the horizontal runs: best[j] is the least
        # of best[k] + row[k+1..j] over k <= j, a running minimum once the row's sums are out
        best = np.minimum(total[i - 1, :-1], total[i - 1, 1:]) + row
        running = np.cumsum(row)
        total[i, 1:] = np.minimum.accumulate(best - running) + running
    # backtrack from the cheaper end
    i, j = n, (m if total[n, m] <= total[n, m - 1] else m - 1)
    pairs: list[list[int]] = [[] for _ in range(n)]
    while i > 0 and j > 0:
        pairs[i - 1].append(j - 1)
        steps = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
        choice = int(np.argmin(steps))
        if choice == 0:
            i, j = i - 1, j - 1
        elif choice == 1:
            i -= 1
        else:
            j -= 1
    return np.array([np.mean(p) if p else 0.0 for p in pairs])


def match_outlines(source: np.ndarray, target: np.ndarray, prior: np.ndarray, warp: bool = True) -> np.ndarray:
    """For each target outline point (N, 2), its exemplar outline point (N, 2) (see the module
    docstring). source and target: outlines from `outline` (N points each); prior: (2, 3) pulling
    affine in pixels; warp: pair by dynamic time warping, else by arc length."""
    moved = target @ prior[:, :2].T + prior[:, 2]
    if np.linalg.det(prior[:, :2]) < 0:  # a mirroring prior reverses the outline's direction
        order = np.arange(len(target))[::-1]
        return match_outlines_ordered(source, moved[order], warp)[np.argsort(order)]
    return match_outlines_ordered(source, moved, warp)


def match_outlines_ordered(source: np.ndarray, moved: np.ndarray, warp: bool = True) -> np.ndarray:
    """`match_outlines` for a target outline already in the exemplar's frame and direction."""
    n = len(source)
    shift = best_shift(moved, source)
    rolled = np.roll(source, -shift, axis=0)
    if not warp:
        return rolled
    closed = np.vstack([rolled, rolled[:1]])  # so the last target point may pair with the first
    index = warp_pairs(moved, closed)
    # positions along the closed source outline, by linear interpolation between its points
    low = np.floor(index).astype(int)
    frac = (index - low)[:, None]
    high = np.minimum(low + 1, n)
    return closed[low] * (1 - frac) + closed[high] * frac

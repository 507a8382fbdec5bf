"""Registration of two label maps: one smooth pulling map for a whole re-layout.

When a map is repainted as a smooth deformation (a landscape stretched, a horizon bent, several
regions reshaped together), fitting each region on its own tears the field at their shared
borders. Here the whole exemplar map is registered onto the target map at once:

- Each label present in both maps becomes a soft channel, tanh(signed distance / reach), so a
  boundary pulls on the map from `reach` pixels away and the problem stays smooth.
- The pull is z + u(z), with u bilinear on a grid of knots at a working resolution (the long
  side WORK_SIDE pixels), minimised by Gauss-Newton over the channels' squared differences plus
  a second-difference (bending) penalty on the knots.
- Coarse to fine (LEVELS): few knots and a long reach first, so large moves are caught before
  the details, then more knots and a shorter reach.
- The result is smoothed into a thin-plate spline through FIELD_SAMPLES x FIELD_SAMPLES of its
  points (no kink at knot lines) and sampled on a coarse grid (engine.grid_map) for O(pixels)
  evaluation at full resolution.

engine.reshape decides, region by region, whether this map explains a region better than its
own fits.
"""

from __future__ import annotations

import cv2
import numpy as np

from .grid_map import GridMap
from .regions import id_counts
from .thin_plate import ThinPlate

WORK_SIDE = 256
# (knots on the long side, reach as a share of the long side) per level, coarse to fine.
LEVELS = ((3, 0.12), (6, 0.06), (10, 0.03), (16, 0.015))
ITERATIONS = 8
# The bending penalty, per knot, relative to the data term of one pixel per knot.
STIFFNESS = 1e-4
# Levenberg damping, relative to the normal matrix's mean diagonal.
DAMPING = 1e-3
FIELD_SAMPLES = 12
FIELD_SMOOTHING = 1e-4
# Knots of the full-resolution grid map on the long side of the registered box, at most
# MAX_GRID_KNOTS on the image's.
GRID_KNOTS = 48
MAX_GRID_KNOTS = 128
# A local edit is registered in the box of its changed pixels grown by this share of its long
# side, unless that box covers WHOLE_SHARE of the image.
EDIT_MARGIN = 0.12
WHOLE_SHARE = 0.5


def soft_channels(labels: np.ndarray, ids: list[int], reach: float) -> np.ndarray:
    """tanh(signed distance / reach) of each id's mask in `labels` (h, w), positive inside,
    distances in pixels -> (L, h, w) float32."""
    channels = np.empty((len(ids),) + labels.shape, np.float32)
    for index, region in enumerate(ids):
        inside = (labels == region).astype(np.uint8)
        distance_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
        distance_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
        # a label that fills the map (or is absent) has no boundary: OpenCV's distances are then huge
        signed = np.clip(distance_in - distance_out, -20.0 * reach, 20.0 * reach)
        channels[index] = np.tanh(signed / reach)
    return channels


def bilinear_basis(length: int, knots: int) -> np.ndarray:
    """Weights (length, knots) of `knots` evenly spread over pixels 0..length-1, bilinear."""
    position = np.arange(length) * (knots - 1) / max(length - 1, 1)
    base = np.minimum(np.floor(position).astype(int), knots - 2)
    fraction = position - base
    weights = np.zeros((length, knots))
    weights[np.arange(length), base] = 1 - fraction
    weights[np.arange(length), base + 1] = fraction
    return weights


def bending_operator(rows: int, columns: int) -> np.ndarray:
    """Second differences along both axes of a (rows, columns) knot grid -> (D, rows*columns)."""
    index = np.arange(rows * columns).reshape(rows, columns)
    lines = []
    for j in range(rows):
        for k in range(1, columns - 1):
            lines.append((index[j, k - 1], index[j, k], index[j, k + 1]))
    for j in range(1, rows - 1):
        for k in range(columns):
            lines.append((index[j - 1, k], index[j, k], index[j + 1, k]))
    operator = np.zeros((len(lines), rows * columns))
    for line, (a, b, c) in enumerate(lines):
        operator[line, [a, b, c]] = (1.0, -2.0, 1.0)
    return operator


def _weighted_gram(by: np.ndarray, bx: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """B^T diag(weight) B for the separable basis B = kron(by, bx), by (h, J), bx (w, K) and
    weight (h, w) -> (J*K, J*K), without forming B."""
    j, k = by.shape[1], bx.shape[1]
    pairs_x = (bx[:, :, None] * bx[:, None, :]).reshape(len(bx), k * k)  # (w, K*K)
    pairs_y = (by[:, :, None] * by[:, None, :]).reshape(len(by), j * j)  # (h, J*J)
    gram = (pairs_y.T @ (weight.astype(np.float64) @ pairs_x)).reshape(j, j, k, k)  # (J, J', K, K')
    return gram.transpose(0, 2, 1, 3).reshape(j * k, j * k)


def _knot_grid(height: int, width: int, long_side_knots: int) -> tuple[int, int]:
    scale = (long_side_knots - 1) / max(height - 1, width - 1, 1)
    return max(2, round((height - 1) * scale) + 1), max(2, round((width - 1) * scale) + 1)


def register_working(exemplar_labels: np.ndarray, target_labels: np.ndarray, ids: list[int]) -> np.ndarray:
    """The displacement u (h, w, 2) working pixels, x then y, with which target pixel z pulls
    the exemplar map at z + u(z). Both maps (h, w) int at the working resolution."""
    height, width = target_labels.shape
    side = max(height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    coefficients = np.zeros((2, 2, 2))  # (rows, columns, xy) knots of the first level
    previous = (2, 2)
    for knots, reach_share in LEVELS:
        rows, columns = _knot_grid(height, width, knots)
        by, bx = bilinear_basis(height, rows), bilinear_basis(width, columns)
        # carry the coarser level's knots over: evaluate it at the new knots' places
        carry_y = bilinear_basis(rows, previous[0])
        carry_x = bilinear_basis(columns, previous[1])
        coefficients = np.einsum("ja,abc,kb->jkc", carry_y, coefficients, carry_x)
        previous = (rows, columns)
        reach = reach_share * side
        exemplar = soft_channels(exemplar_labels, ids, reach)
        target = soft_channels(target_labels, ids, reach)
        # each label's channel with its x and y gradients, sampled together: (h, w, 3) each
        exemplar_stacks = [
            np.dstack([channel, cv2.Sobel(channel, cv2.CV_32F, 1, 0) / 8.0, cv2.Sobel(channel, cv2.CV_32F, 0, 1) / 8.0])
            for channel in exemplar
        ]
        bending = bending_operator(rows, columns)
        penalty = STIFFNESS * (height * width / (rows * columns)) * (bending.T @ bending)
        n = rows * columns
        for _ in range(ITERATIONS):
            map_x = xs + (by @ coefficients[..., 0] @ bx.T).astype(np.float32)
            map_y = ys + (by @ coefficients[..., 1] @ bx.T).astype(np.float32)
            hxx = np.zeros((height, width), np.float32)
            hxy, hyy, bxr, byr = hxx.copy(), hxx.copy(), hxx.copy(), hxx.copy()
            for stacked, wanted in zip(exemplar_stacks, target):
                sampled = cv2.remap(stacked, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                pulled, sx, sy = sampled[..., 0], sampled[..., 1], sampled[..., 2]
                residual = pulled - wanted
                hxx += sx * sx
                hxy += sx * sy
                hyy += sy * sy
                bxr += sx * residual
                byr += sy * residual
            cross = _weighted_gram(by, bx, hxy)
            normal = np.block([
                [_weighted_gram(by, bx, hxx) + penalty, cross],
                [cross, _weighted_gram(by, bx, hyy) + penalty],
            ])
            flat = coefficients.reshape(n, 2)
            rhs = -np.concatenate([
                (by.T @ bxr @ bx).ravel() + penalty @ flat[:, 0],
                (by.T @ byr @ bx).ravel() + penalty @ flat[:, 1],
            ])
            normal += DAMPING * np.trace(normal) / len(normal) * np.eye(len(normal))
            step = np.linalg.solve(normal, rhs)
            coefficients = (flat + np.stack([step[:n], step[n:]], axis=1)).reshape(rows, columns, 2)
    u = np.stack([by @ coefficients[..., c] @ bx.T for c in (0, 1)], axis=-1)
    return u


def edit_box(exemplar_labels: np.ndarray, target_labels: np.ndarray) -> tuple[int, int, int, int]:
    """The part of the image (x0, y0, x1, y1) that a registration needs: the box of the pixels
    whose label changed, grown by EDIT_MARGIN of its long side, or the whole image when that
    covers WHOLE_SHARE of it. (H, W) int maps."""
    height, width = target_labels.shape
    rows, cols = np.nonzero(exemplar_labels != target_labels)
    if rows.size == 0:
        return 0, 0, width, height
    margin = EDIT_MARGIN * max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    x0, y0 = max(0, int(cols.min() - margin)), max(0, int(rows.min() - margin))
    x1, y1 = min(width, int(np.ceil(cols.max() + 1 + margin))), min(height, int(np.ceil(rows.max() + 1 + margin)))
    if (x1 - x0) * (y1 - y0) >= WHOLE_SHARE * width * height:
        return 0, 0, width, height
    return x0, y0, x1, y1


def register_maps(exemplar_labels: np.ndarray, target_labels: np.ndarray) -> GridMap | None:
    """The smooth pulling map (full-resolution pixels) that carries the exemplar map (H, W) int
    onto the target map (H, W) int (see the module docstring); None when they share no label.
    A local edit is registered inside its `edit_box` at the full working resolution, and the
    map is the identity outside it."""
    height, width = target_labels.shape
    x0, y0, x1, y1 = edit_box(exemplar_labels, target_labels)
    exemplar_part, target_part = exemplar_labels[y0:y1, x0:x1], target_labels[y0:y1, x0:x1]
    ids = sorted(set(id_counts(exemplar_part)[0].tolist()) & set(id_counts(target_part)[0].tolist()))
    if not ids:
        return None
    part_h, part_w = y1 - y0, x1 - x0
    shrink = min(1.0, WORK_SIDE / max(part_h, part_w))
    size = (max(2, round(part_w * shrink)), max(2, round(part_h * shrink)))
    small_exemplar = cv2.resize(exemplar_part.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
    small_target = cv2.resize(target_part.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
    u = register_working(small_exemplar, small_target, ids)
    # working pixel (i, j) has its centre at full-resolution ((i + 0.5) / s - 0.5, ...) in the box
    factors = np.array([part_w / size[0], part_h / size[1]])
    rows = np.linspace(0, size[1] - 1, FIELD_SAMPLES).round().astype(int)
    cols = np.linspace(0, size[0] - 1, FIELD_SAMPLES).round().astype(int)
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    small_points = np.stack([grid_cols.ravel(), grid_rows.ravel()], axis=1).astype(np.float64)
    pulled_small = small_points + u[grid_rows.ravel(), grid_cols.ravel()]
    offset = np.array([x0, y0], np.float64)
    target_points = (small_points + 0.5) * factors - 0.5 + offset
    source_points = (pulled_small + 0.5) * factors - 0.5 + offset
    cell = max(height, width) / GRID_KNOTS
    if (x1 - x0, y1 - y0) != (width, height):
        # the identity around the box, at points as far apart as the box's own
        spacing = max(part_h, part_w) / (FIELD_SAMPLES - 1)
        ys, xs = np.mgrid[-0.5 : height + spacing : spacing, -0.5 : width + spacing : spacing]
        around = np.stack([xs.ravel(), ys.ravel()], axis=1)
        outside = ((around[:, 0] < x0 - spacing / 2) | (around[:, 0] > x1 + spacing / 2)
                   | (around[:, 1] < y0 - spacing / 2) | (around[:, 1] > y1 + spacing / 2))
        target_points = np.concatenate([target_points, around[outside]])
        source_points = np.concatenate([source_points, around[outside]])
        cell = max(max(part_h, part_w) / GRID_KNOTS, max(height, width) / MAX_GRID_KNOTS)
    spline = ThinPlate.fit(target_points, source_points, float(max(height, width)), FIELD_SMOOTHING)
    return GridMap.sample(spline.pull, height, width, cell)

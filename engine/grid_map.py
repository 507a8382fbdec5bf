"""A smooth pulling map sampled on a coarse regular grid, evaluated between by cubic interpolation.

A thin-plate spline costs one kernel term per control point at every pixel. A map that covers
the whole image (a re-layout, engine.register) is instead sampled once at knots CELL pixels
apart and interpolated per pixel with Catmull-Rom cubics: C1 (no kink at a knot line), exact for
affine maps, and O(pixels) with two small matrix products per box of pixels.

Coordinates are the engine's pixel coordinates (engine.motion). The knots sit at
x_k = x_first + k * cell (and the same for y), one cell and more beyond the image on each side,
so every pixel has its four knots on each axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .thin_plate import central_jacobians, jacobian_determinants

# Knots evaluated per call when a map is sampled.
SAMPLE_CHUNK = 2048


def _catmull_rom(positions: np.ndarray, first: float, cell: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """For 1-D positions (P,): the index (P,) of each one's first knot of four, clipped into
    0..count-4, and the Catmull-Rom weights (P, 4) of those four knots."""
    t = (np.asarray(positions, np.float64) - first) / cell
    base = np.clip(np.floor(t).astype(np.int64) - 1, 0, count - 4)
    f = t - base - 1.0
    weights = 0.5 * np.stack([
        -f**3 + 2 * f**2 - f,
        3 * f**3 - 5 * f**2 + 2,
        -3 * f**3 + 4 * f**2 + f,
        f**3 - f**2,
    ], axis=1)
    return base, weights


def cubic_weights(positions: np.ndarray, first: float, cell: float, count: int) -> np.ndarray:
    """Catmull-Rom weights (P, count) of the knots `first + k * cell` (k < count) for 1-D
    positions (P,). Positions must lie between the second and the second-to-last knot."""
    base, parts = _catmull_rom(positions, first, cell, count)
    weights = np.zeros((len(base), count))
    rows = np.arange(len(base))
    for offset in range(4):
        weights[rows, base + offset] = parts[:, offset]
    return weights


@dataclass(frozen=True)
class GridMap:
    """A pulling map (see the module docstring): `pulled` (gh, gw, 2) float64 is where knot
    (row j, col k), at pixel (x_first + k cell, y_first + j cell), samples the exemplar."""

    pulled: np.ndarray
    first: tuple[float, float]
    cell: float

    @staticmethod
    def sample(pull: Callable[[np.ndarray], np.ndarray], height: int, width: int, cell: float) -> GridMap:
        """The GridMap of `pull` (pixel points (N, 2) -> (N, 2)) over an image of this size,
        knots `cell` pixels apart."""
        columns = int(np.ceil(width / cell)) + 5
        rows = int(np.ceil(height / cell)) + 5
        first = (-0.5 - 1.5 * cell, -0.5 - 1.5 * cell)
        ys, xs = np.mgrid[0:rows, 0:columns].astype(np.float64)
        knots = np.stack([first[0] + xs.ravel() * cell, first[1] + ys.ravel() * cell], axis=1)
        # a few thousand knots at a time: a spline's pull holds a knots x centres matrix
        pulled = np.concatenate([pull(knots[start : start + SAMPLE_CHUNK]) for start in range(0, len(knots), SAMPLE_CHUNK)])
        return GridMap(pulled.astype(np.float64).reshape(rows, columns, 2), first, float(cell))

    @cached_property
    def affine(self) -> np.ndarray:
        """The least-squares affine (2, 3) pixels of the knots' pulls: the map's affine part
        (found once: every region a re-layout's map carries asks for it)."""
        rows, columns = self.pulled.shape[:2]
        ys, xs = np.mgrid[0:rows, 0:columns].astype(np.float64)
        knots = np.stack([self.first[0] + xs.ravel() * self.cell, self.first[1] + ys.ravel() * self.cell, np.ones(xs.size)], 1)
        return np.linalg.lstsq(knots, self.pulled.reshape(-1, 2), rcond=None)[0].T

    def pull(self, points: np.ndarray) -> np.ndarray:
        """Pixel points (P, 2) -> where they sample the exemplar (P, 2), float64."""
        points = np.asarray(points, np.float64)
        rows, columns = self.pulled.shape[:2]
        col, wx = _catmull_rom(points[:, 0], self.first[0], self.cell, columns)
        row, wy = _catmull_rom(points[:, 1], self.first[1], self.cell, rows)
        out = np.zeros((len(points), 2))
        for j in range(4):
            for k in range(4):
                out += (wy[:, j] * wx[:, k])[:, None] * self.pulled[row + j, col + k]
        return out

    def maps(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The pulled position of every pixel of `box` (x0, y0, x1, y1): OpenCV remap maps
        (map_x, map_y), each (box h, box w) float32."""
        x0, y0, x1, y1 = box
        rows, columns = self.pulled.shape[:2]
        wx = cubic_weights(np.arange(x0, x1), self.first[0], self.cell, columns)  # (w, gw)
        wy = cubic_weights(np.arange(y0, y1), self.first[1], self.cell, rows)  # (h, gh)
        map_x, map_y = ((wy @ self.pulled[..., c] @ wx.T).astype(np.float32) for c in (0, 1))
        return map_x, map_y

    def jacobian_determinants(self, points: np.ndarray, step: float = 0.5) -> np.ndarray:
        """det dT/dz at pixel points (P, 2), by central differences `step` pixels wide -> (P,)."""
        return jacobian_determinants(central_jacobians(self.pull, points, step))

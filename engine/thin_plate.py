"""Thin-plate splines: the smooth pulling maps of non-rigid reshapes, evaluated exactly per pixel.

A thin-plate spline through N control points pulls target point z to

    T(z) = A [z, 1] + sum_i w_i U(|z - c_i|),   U(r) = r^2 log r,

with A (2, 3) its affine part, c_i the control points (target pixels) and w_i (2,) their
kernel weights (which sum to zero and have no affine moment, so T grows no faster than A far
from the points). With `smoothing` > 0 the spline approximates its points instead of passing
through them (the regularised fit: residuals traded against bending energy), which keeps noisy
contour matches from making ripples.

Coordinates are the engine's pixel coordinates (engine.motion), scaled by `scale` (the image's
long side) inside the kernel so the fit is conditioned the same at every resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Pixels evaluated per chunk: the kernel matrix of a chunk is CHUNK x N float32.
CHUNK = 16_384


def _kernel(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """U(|p - c|) for points (P, 2) and centres (N, 2), in kernel units -> (P, N)."""
    squared = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return 0.5 * squared * np.log(np.maximum(squared, 1e-20))


@dataclass(frozen=True)
class ThinPlate:
    """A fitted pulling spline (see the module docstring), in pixel coordinates.

    centres: (N, 2) control points in target pixels; weights: (N, 2) kernel weights;
    affine: (2, 3) the affine part (pulling, pixels); scale: the kernel's unit length in pixels.
    """

    centres: np.ndarray
    weights: np.ndarray
    affine: np.ndarray
    scale: float

    @staticmethod
    def fit(target: np.ndarray, source: np.ndarray, scale: float, smoothing: float = 0.0) -> ThinPlate:
        """The spline pulling target points (N, 2) to source points (N, 2), pixels. N >= 3 and
        not all on a line; `smoothing` is the regularisation in kernel units (0: interpolate)."""
        target = np.asarray(target, np.float64)
        source = np.asarray(source, np.float64)
        n = len(target)
        units = target / scale
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = _kernel(units, units) + smoothing * np.eye(n)
        system[:n, n] = 1.0
        system[:n, n + 1 :] = units
        system[n:, :n] = system[:n, n:].T
        rhs = np.zeros((n + 3, 2))
        rhs[:n] = source
        try:
            solution = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:  # points on a line or repeated: the least-squares spline
            solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
        # affine part back in pixels: source = c + L (z / scale)
        linear = solution[n + 1 :].T / scale
        affine = np.concatenate([linear, solution[n][:, None]], axis=1)
        return ThinPlate(target, solution[:n], affine, float(scale))

    def pull(self, points: np.ndarray) -> np.ndarray:
        """Pixel points (P, 2) -> where they sample the exemplar (P, 2), float64."""
        return self._evaluate(np.asarray(points, np.float64), np.float64)

    def maps(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The pulled position of every pixel of `box` (x0, y0, x1, y1): OpenCV remap maps
        (map_x, map_y), each (box h, box w) float32. The kernel sum is done in float32: kernel
        units are O(1), so it stays within a few thousandths of a pixel of float64 (tests/test_thin_plate.py)
        at a third of the time."""
        x0, y0, x1, y1 = box
        ys, xs = np.mgrid[y0:y1, x0:x1]
        out = self._evaluate(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64), np.float32)
        shape = (y1 - y0, x1 - x0)
        return out[:, 0].reshape(shape).astype(np.float32), out[:, 1].reshape(shape).astype(np.float32)

    def _evaluate(self, points: np.ndarray, dtype) -> np.ndarray:
        """T at pixel points (P, 2) float64, the kernel sum in `dtype`, by chunks of CHUNK with
        |p - c|^2 expanded so that each chunk is one matrix product."""
        out = points @ self.affine[:, :2].T + self.affine[:, 2]
        centres = (self.centres / self.scale).astype(dtype)
        weights = (0.5 * self.weights).astype(dtype)  # the 0.5 of U(r) = 0.5 r^2 log r^2
        centre_norms = (centres**2).sum(axis=1)
        for start in range(0, len(points), CHUNK):
            chunk = (points[start : start + CHUNK] / self.scale).astype(dtype)
            squared = chunk @ (-2.0 * centres.T)
            squared += (chunk**2).sum(axis=1)[:, None]
            squared += centre_norms[None, :]
            np.maximum(squared, dtype(1e-20), out=squared)
            squared *= np.log(squared)
            out[start : start + CHUNK] += squared @ weights
        return out

    def bending_energy(self) -> float:
        """The spline's bending energy, sum over x and y of w^T K w (kernel units; 0 for an
        affine map): how far from affine the map is."""
        units = self.centres / self.scale
        return float(np.einsum("ik,ij,jk->", self.weights, _kernel(units, units), self.weights))

    def jacobian_determinants(self, points: np.ndarray, step: float = 0.5) -> np.ndarray:
        """det dT/dz at pixel points (P, 2), by central differences `step` pixels wide -> (P,).
        Positive everywhere means the map does not fold over."""
        return jacobian_determinants(central_jacobians(self.pull, points, step))


def central_jacobians(pull: Callable[[np.ndarray], np.ndarray], points: np.ndarray, step: float = 0.5) -> np.ndarray:
    """dT/dz of a pulling map T (pixel points (P, 2) -> (P, 2)) at points (P, 2), by central
    differences `step` pixels wide -> (P, 2, 2), columns d/dx and d/dy."""
    dx, dy = np.array([step, 0.0]), np.array([0.0, step])
    along_x = (pull(points + dx) - pull(points - dx)) / (2 * step)
    along_y = (pull(points + dy) - pull(points - dy)) / (2 * step)
    return np.stack([along_x, along_y], axis=-1)


def jacobian_determinants(jacobians: np.ndarray) -> np.ndarray:
    """det of Jacobians (P, 2, 2) -> (P,)."""
    return jacobians[:, 0, 0] * jacobians[:, 1, 1] - jacobians[:, 1, 0] * jacobians[:, 0, 1]

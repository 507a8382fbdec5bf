"""Synthetic edits with exact ground truth, for the benchmarks.

Every edit is a known pulling warp W (target pixel -> exemplar position, pixels). Applied to the
artwork it gives the ground truth, applied (nearest) to the region map it gives the target map,
so "exemplar + its map -> target map" has one right answer, pixel for pixel.

Kinds:
- move: one region translated (up to a third of its size) and slightly turned;
- scale: one region grown or shrunk into its neighbours (x0.75 .. x1.3 about its centroid);
- rotate: one region turned by 10..35 degrees;
- tps: a global thin-plate-spline re-layout of the whole picture;
- bend: one region bent along a smooth curve about its long axis (a tree leaning, a peak
  raised, a wave curled): its base stays, its tip swings sideways by 15..35% of its length.
A region's affine acts fully inside its new place and fades to the identity over a band around
it, so the neighbours stretch or shrink to make room instead of leaving a hole.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("move", "scale", "rotate", "tps")
# Reshape edits (bench/quality.py --kinds): non-rigid, with the move and scale edits as the
# no-regression set.
RESHAPE_KINDS = ("tps", "bend", "move", "scale")


@dataclass(frozen=True)
class Edit:
    kind: str
    exemplar: np.ndarray  # (H, W, C) float32
    exemplar_labels: np.ndarray  # (H, W) int32
    target_labels: np.ndarray  # (H, W) int32
    ground_truth: np.ndarray  # (H, W, C) float32
    changed: np.ndarray  # (H, W) bool: pixels the warp moves by more than half a pixel


def grid(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def apply_pull(pixels: np.ndarray, labels: np.ndarray, field: np.ndarray, kind: str) -> Edit:
    """Warp the artwork (bilinear) and its map (nearest) by the pulling field (H, W, 2)."""
    map_x, map_y = field[..., 0].astype(np.float32), field[..., 1].astype(np.float32)
    truth = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    target = cv2.remap(labels.astype(np.float32), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    moved = np.linalg.norm(field - grid(*labels.shape), axis=-1) > 0.5
    return Edit(kind, pixels, labels, target.astype(np.int32), truth.reshape(pixels.shape), moved)


def region_field(labels: np.ndarray, region: int, affine: np.ndarray) -> np.ndarray:
    """Pulling field: `affine` (2, 3, pulling) inside the region's new place, fading to the
    identity over a band around it."""
    height, width = labels.shape
    source = (labels == region).astype(np.uint8)
    placed = cv2.warpAffine(source, affine, (width, height), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    if not placed.any():
        placed = source
    band = 0.6 * np.sqrt(source.sum()) + 8.0
    distance = cv2.distanceTransform((placed == 0).astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.clip(1.0 - distance / band, 0.0, 1.0)
    fade = fade * fade * (3 - 2 * fade)  # smoothstep: no kink at the band's edges
    points = grid(height, width)
    pulled = points @ affine[:, :2].T.astype(np.float32) + affine[:, 2].astype(np.float32)
    return points + fade[..., None] * (pulled - points)


def bend_field(labels: np.ndarray, region: int, rng: np.random.Generator) -> np.ndarray:
    """Pulling field of a bend: along the region's long axis u (from its base, the end picked at
    random, u in [0, 1] over its length L) the region is displaced across the axis by
    a L u^2 (a in +-[0.15, 0.35]), fading to the identity around it as in `region_field`."""
    height, width = labels.shape
    mask = labels == region
    rows, cols = np.nonzero(mask)
    points = np.stack([cols, rows], axis=1).astype(np.float64)
    centre = points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    axis, across = vectors[:, 1], vectors[:, 0]  # the long axis has the larger eigenvalue
    along = (points - centre) @ axis
    if rng.random() < 0.5:  # which end is the base
        axis, along = -axis, -along
    base, length = along.min(), max(along.max() - along.min(), 1.0)
    amount = rng.uniform(0.15, 0.35) * rng.choice([-1, 1]) * length
    grid_points = grid(height, width).astype(np.float64)
    u = np.clip(((grid_points - centre) @ axis - base) / length, 0.0, None)
    # target z pulls from z - offset(z), offset across the axis, growing from the base
    bent = grid_points - (amount * u**2)[..., None] * across
    # the fade: full inside the bent region's place (where the bent mask lands), identity far off
    placed = cv2.remap(mask.astype(np.uint8), bent[..., 0].astype(np.float32), bent[..., 1].astype(np.float32), cv2.INTER_NEAREST)
    band = 0.6 * np.sqrt(mask.sum()) + 8.0
    distance = cv2.distanceTransform((placed == 0).astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.clip(1.0 - distance / band, 0.0, 1.0)
    fade = fade * fade * (3 - 2 * fade)
    return (grid_points + fade[..., None] * (bent - grid_points)).astype(np.float32)


def tps_field(height: int, width: int, rng: np.random.Generator, strength: float = 0.05) -> np.ndarray:
    """Pulling field of a thin-plate spline through a 4x4 grid of control points, each moved by
    a Gaussian offset of `strength` times the shorter side."""
    cx, cy = np.meshgrid(np.linspace(0, width - 1, 4), np.linspace(0, height - 1, 4))
    controls = np.stack([cx.ravel(), cy.ravel()], axis=1)
    offsets = rng.normal(0.0, strength * min(height, width), controls.shape)

    def kernel(a, b):
        r2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.where(r2 > 0, 0.5 * r2 * np.log(np.maximum(r2, 1e-12)), 0.0)

    n = len(controls)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = kernel(controls, controls)
    system[:n, n:] = np.hstack([np.ones((n, 1)), controls])
    system[n:, :n] = system[:n, n:].T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = offsets
    coefficients = np.linalg.solve(system, rhs)
    points = grid(height, width).reshape(-1, 2).astype(np.float64)
    displacement = kernel(points, controls) @ coefficients[:n] + coefficients[n] + points @ coefficients[n + 1 :]
    return (points + displacement).reshape(height, width, 2).astype(np.float32)


def _pick_region(labels: np.ndarray, rng: np.random.Generator) -> int:
    areas = np.bincount(labels.ravel())
    share = areas / labels.size
    candidates = np.flatnonzero((share >= 0.02) & (share <= 0.4))
    if candidates.size == 0:
        candidates = np.flatnonzero(areas)[np.argsort(areas[np.flatnonzero(areas)])][:1]
    return int(rng.choice(candidates))


def _about_centroid(labels, region, linear, shift=(0.0, 0.0)) -> np.ndarray:
    """Pulling affine: the region turned/scaled by `linear` about its centroid and moved by
    `shift` (pushing sense, pixels)."""
    rows, cols = np.nonzero(labels == region)
    centre = np.array([cols.mean(), rows.mean()])
    inverse = np.linalg.inv(linear)
    # target z pulls from centre + inverse @ (z - centre - shift)
    return np.hstack([inverse, (centre - inverse @ (centre + np.asarray(shift)))[:, None]])


def make_edit(pixels: np.ndarray, labels: np.ndarray, kind: str, rng: np.random.Generator) -> Edit:
    height, width = labels.shape
    if kind == "tps":
        return apply_pull(pixels, labels, tps_field(height, width, rng), kind)
    region = _pick_region(labels, rng)
    if kind == "bend":
        return apply_pull(pixels, labels, bend_field(labels, region, rng), kind)
    size = np.sqrt((labels == region).sum())
    if kind == "move":
        angle = np.radians(rng.uniform(-8, 8))
        shift = rng.uniform(0.15, 0.35) * size * np.array([np.cos(t := rng.uniform(0, 2 * np.pi)), np.sin(t)])
        affine = _about_centroid(labels, region, _rotation(angle), shift)
    elif kind == "scale":
        factor = rng.choice([rng.uniform(0.75, 0.9), rng.uniform(1.1, 1.3)])
        affine = _about_centroid(labels, region, np.eye(2) * factor)
    elif kind == "rotate":
        angle = np.radians(rng.uniform(10, 35) * rng.choice([-1, 1]))
        affine = _about_centroid(labels, region, _rotation(angle))
    else:
        raise ValueError(f"unknown edit kind {kind}")
    return apply_pull(pixels, labels, region_field(labels, region, affine), kind)


def _rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def make_edits(pixels: np.ndarray, labels: np.ndarray, count: int, seed: int, kinds=KINDS) -> list[Edit]:
    """`count` edits cycling through `kinds`, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [make_edit(pixels, labels, kinds[i % len(kinds)], rng) for i in range(count)]


@dataclass(frozen=True)
class VacateEdit:
    """A figure pasted into a host painting at X (the exemplar) and moved to Y, or deleted (the
    target map); the host with the figure at Y, or without it, is the exact ground truth, and
    the vacated pixels (the figure's place at X that it no longer covers) have a known answer."""

    kind: str  # "vacate-move" or "vacate-delete"
    exemplar: np.ndarray  # (H, W, C) float32
    exemplar_labels: np.ndarray  # (H, W) int32: the host's own map, the figure's id at X
    target_labels: np.ndarray  # (H, W) int32: the host's map, the figure's id at Y (if moved)
    ground_truth: np.ndarray  # (H, W, C) float32
    vacated: np.ndarray  # (H, W) bool
    placed: np.ndarray  # (H, W) bool: the figure's new place (empty when deleted)
    figure: int  # the figure's region id


def figure_regions(labels: np.ndarray) -> list[int]:
    """The figure-like regions of a map, most figure-like first: those covering 1-30% of the
    picture and touching at most one of its sides, by solidity (area / convex hull area)."""
    height, width = labels.shape
    scored = []
    for region in np.unique(labels):
        mask = labels == region
        rows, cols = np.nonzero(mask)
        sides = (rows.min() == 0) + (cols.min() == 0) + (rows.max() == height - 1) + (cols.max() == width - 1)
        if not 0.01 <= mask.mean() <= 0.30 or sides > 1:
            continue
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.convexHull(np.concatenate(contours))
        scored.append((mask.sum() / max(cv2.contourArea(hull), 1.0), int(region)))
    return [region for _, region in sorted(scored, reverse=True)]


def figure_cutout(pixels: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The most figure-like region of a painting's map (`figure_regions`), cut out: its pixels
    (h, w, C) and mask (h, w) bool, cropped to its box."""
    candidates = figure_regions(labels)
    if not candidates:
        raise ValueError("no figure-like region in this map")
    mask = labels == candidates[0]
    rows, cols = np.nonzero(mask)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return pixels[box].copy(), mask[box].copy()


def vacate_edit(host: np.ndarray, host_labels: np.ndarray, cutout: np.ndarray, cutout_mask: np.ndarray,
                kind: str, rng: np.random.Generator, share: float = 0.07) -> VacateEdit:
    """Paste the cut-out (scaled to `share` of the host's area) at a random X, then move it to a
    random Y at least its own width or height away ("vacate-move"), or delete it ("vacate-delete")."""
    height, width = host_labels.shape
    scale = np.sqrt(share * height * width / cutout_mask.sum())
    fh = max(4, min(int(round(cutout_mask.shape[0] * scale)), height - 2))
    fw = max(4, min(int(round(cutout_mask.shape[1] * scale)), width - 2))
    figure_pixels = cv2.resize(cutout, (fw, fh), interpolation=cv2.INTER_AREA).reshape(fh, fw, -1)[:, :, : host.shape[2]]
    figure_mask = cv2.resize(cutout_mask.astype(np.uint8), (fw, fh), interpolation=cv2.INTER_NEAREST).astype(bool)

    def placement() -> tuple[int, int]:
        return int(rng.integers(1, height - fh)), int(rng.integers(1, width - fw))

    def paste(image, labels, at, figure_id):
        y, x = at
        image, labels = image.copy(), labels.copy()
        window = (slice(y, y + fh), slice(x, x + fw))
        image[window][figure_mask] = figure_pixels[figure_mask]
        labels[window][figure_mask] = figure_id
        return image, labels

    figure_id = int(host_labels.max()) + 1
    at_x = placement()
    for _ in range(100):
        at_y = placement()
        if abs(at_y[0] - at_x[0]) >= 0.6 * fh or abs(at_y[1] - at_x[1]) >= 0.6 * fw:
            break
    exemplar, exemplar_labels = paste(host, host_labels, at_x, figure_id)
    if kind == "vacate-move":
        truth, target_labels = paste(host, host_labels, at_y, figure_id)
    elif kind == "vacate-delete":
        truth, target_labels = host.copy(), host_labels.copy()
    else:
        raise ValueError(f"unknown vacate kind {kind}")
    placed = target_labels == figure_id
    vacated = (exemplar_labels == figure_id) & ~placed
    return VacateEdit(kind, exemplar, exemplar_labels, target_labels, truth, vacated, placed, figure_id)

"""Region mask geometry: bounding boxes, interiors, feathered edges, moments, contours and the
working grid over a region. Masks are (H, W) bool in pixel coordinates (engine.motion)."""

from __future__ import annotations

import cv2
import numpy as np

# A region's outermost pixels (this many) mix in its neighbours' colours, and hand-drawn maps
# are rarely exact there: motions are not rewarded for sampling them.
RIM_WIDTH = 2


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end-exclusive, of the True pixels of `mask` (H, W), grown by `margin`
    and clipped to the image; None when the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    return (
        max(0, int(cols[0]) - margin),
        max(0, int(rows[0]) - margin),
        min(width, int(cols[-1]) + 1 + margin),
        min(height, int(rows[-1]) + 1 + margin),
    )


def feathered_mask(mask: np.ndarray, box: tuple[int, int, int, int], sigma: float) -> np.ndarray:
    """The region indicator `mask` (H, W) bool, Gaussian-blurred, inside `box`. Blurring the
    indicators of a partition keeps their sum at one, so feathered regions tile exactly."""
    if sigma <= 0:
        x0, y0, x1, y1 = box
        return mask[y0:y1, x0:x1].astype(np.float32)
    pad = int(np.ceil(4 * sigma)) + 1
    height, width = mask.shape
    x0, y0 = max(0, box[0] - pad), max(0, box[1] - pad)
    x1, y1 = min(width, box[2] + pad), min(height, box[3] + pad)
    blurred = cv2.GaussianBlur(
        mask[y0:y1, x0:x1].astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT
    )
    blurred = blurred.reshape(y1 - y0, x1 - x0)
    return blurred[box[1] - y0 : box[3] - y0, box[0] - x0 : box[2] - x0]


def interior_mask(mask: np.ndarray, rim: int = RIM_WIDTH) -> np.ndarray:
    """mask (H, W) bool without its outer `rim` pixels, (H, W) bool; the whole mask when
    nothing would remain (thin regions)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
    inner = cv2.erode(np.asarray(mask, bool).view(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    return inner.view(bool) if inner.any() else np.asarray(mask, bool)


def region_interior(mask: np.ndarray, rim: int = RIM_WIDTH) -> np.ndarray:
    """`interior_mask` as float32 (H, W), for sampling bilinearly."""
    return interior_mask(mask, rim).astype(np.float32)


# A region's working grid has at most this many cells on its long side.
GRID_SIDE = 256


def region_box(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int]:
    """`bounding_box` of a mask that must not be empty (a region present in its map)."""
    box = bounding_box(mask, margin)
    if box is None:
        raise ValueError("the region's mask is empty")
    return box


def mask_moments(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (2,) and covariance (2, 2), in pixels, of a non-empty mask (H, W) bool.

    The covariance includes each pixel's own spread (1/12 per axis), so one pixel is not a point.
    """
    x0, y0, x1, y1 = region_box(mask)
    # The 0/1 bytes as grey levels: OpenCV's binary-image path is several times slower.
    m = cv2.moments(np.asarray(mask, bool)[y0:y1, x0:x1].view(np.uint8))
    centroid = np.array([m["m10"] / m["m00"] + x0, m["m01"] / m["m00"] + y0])
    covariance = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
    return centroid, covariance + np.eye(2) / 12.0


def contour_points(mask: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of the outer contours of a non-empty mask (H, W) bool."""
    x0, y0, x1, y1 = region_box(mask, margin=1)
    contours, _ = cv2.findContours(
        mask[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    return points + [x0, y0]


def sample_mask(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """mask (H, W) bool at pixel points (N, 2), nearest; False outside the image."""
    cols = np.rint(points[:, 0]).astype(np.int64)
    rows = np.rint(points[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (rows >= 0) & (cols < mask.shape[1]) & (rows < mask.shape[0])
    hit = np.zeros(len(points), bool)
    hit[inside] = mask[rows[inside], cols[inside]]
    return hit


def region_grid(target_mask: np.ndarray):
    """The working grid over a non-empty target region's box, at most GRID_SIDE cells on its
    long side. Returns its extent (x0, y0, x1, y1) in full-resolution pixel edges, the cell
    centres (N, 2) in pixels, row by row, its shape (h, w), and a cell's side in pixels."""
    box = region_box(target_mask)
    scale = min(1.0, GRID_SIDE / max(box[2] - box[0], box[3] - box[1]))
    grid_w = max(1, int(np.ceil((box[2] - box[0]) * scale)))
    grid_h = max(1, int(np.ceil((box[3] - box[1]) * scale)))
    grid_box = (box[0], box[1], box[0] + grid_w / scale, box[1] + grid_h / scale)
    cols, rows = np.meshgrid(np.arange(grid_w), np.arange(grid_h))
    centres = np.stack([box[0] + (cols + 0.5) / scale - 0.5, box[1] + (rows + 0.5) / scale - 0.5], -1)
    return grid_box, centres.reshape(-1, 2), (grid_h, grid_w), 1.0 / scale

"""The explain sheet: one picture that shows how a result was made.

Six panels: the exemplar, its region map, the target map, the keypoints (each region's exemplar
keypoints as dots, joined to their target positions, rings), how each pixel came (grey where it
is the painting's own, unchanged; its region's colour where it was warped; pale where it was
filled, with lines from a few filled places to the sources they were taken from), and the
result. Panels are PANEL_SIZE on their long side, or the image's own size when that is larger
(up to MAX_PANEL), so that small objects stay visible.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..io.imageio import to_rgb8
from ..motion import points_to_pixels
from ..pipeline import Manipulation
from ..regions import colour_map, distinct_palette

PANEL_SIZE = 640
MAX_PANEL = 1024
LABEL_HEIGHT = 22
# Fill sources drawn on the provenance panel.
SOURCE_LINES = 24


def explain_sheet(exemplar: np.ndarray, manipulation: Manipulation, palette: np.ndarray | None = None) -> np.ndarray:
    """exemplar (H, W, C) float32 and its Manipulation -> sheet (h, w, 3) uint8."""
    count = int(max(manipulation.exemplar_labels.max(), manipulation.target_labels.max())) + 1
    if palette is None or len(palette) < count:
        palette = distinct_palette(count)
    exemplar_rgb = to_rgb8(exemplar)
    panels = [
        ("exemplar", exemplar_rgb),
        ("exemplar regions", colour_map(manipulation.exemplar_labels, palette)),
        ("target regions", colour_map(manipulation.target_labels, palette)),
        ("keypoints: exemplar (dot) -> target (ring)", _keypoint_panel(exemplar_rgb, manipulation, palette)),
        ("pixels: unchanged (grey), warped (colour), filled (pale) <- source", _kind_panel(manipulation, palette)),
        ("result", to_rgb8(manipulation.pixels)),
    ]
    height, width = exemplar.shape[:2]
    scale = min(max(PANEL_SIZE, height, width), MAX_PANEL) / max(height, width)
    panel_w, panel_h = max(1, round(width * scale)), max(1, round(height * scale))
    columns = 3
    rows = (len(panels) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * panel_w, rows * (panel_h + LABEL_HEIGHT)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (label, picture) in enumerate(panels):
        x = (index % columns) * panel_w
        y = (index // columns) * (panel_h + LABEL_HEIGHT)
        resample = Image.Resampling.NEAREST if "regions" in label else Image.Resampling.LANCZOS
        sheet.paste(Image.fromarray(picture).resize((panel_w, panel_h), resample), (x, y + LABEL_HEIGHT))
        draw.text((x + 4, y + 5), label, fill=(0, 0, 0))
    return np.asarray(sheet)


def _keypoint_panel(exemplar_rgb: np.ndarray, manipulation: Manipulation, palette: np.ndarray) -> np.ndarray:
    height, width = exemplar_rgb.shape[:2]
    target = colour_map(manipulation.target_labels, palette)
    base = (0.55 * exemplar_rgb + 0.45 * target).astype(np.uint8)
    # Draw on an enlarged copy so that small images still show legible marks.
    zoom = max(1.0, PANEL_SIZE / max(height, width))
    picture = Image.fromarray(base).resize((round(width * zoom), round(height * zoom)), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(picture)
    radius = max(2.0, 0.012 * PANEL_SIZE)
    for region, motion in manipulation.motions.items():
        colour = tuple(int(c) for c in palette[region])
        source = (points_to_pixels(motion.keypoints_src, height, width) + 0.5) * zoom
        target_points = (points_to_pixels(motion.keypoints_tgt, height, width) + 0.5) * zoom
        for (sx, sy), (tx, ty) in zip(source, target_points):
            draw.line([(sx, sy), (tx, ty)], fill=(0, 0, 0), width=1)
            draw.ellipse([sx - radius, sy - radius, sx + radius, sy + radius], fill=colour, outline=(0, 0, 0))
            draw.ellipse([tx - radius, ty - radius, tx + radius, ty + radius], outline=colour, width=2)
    return np.asarray(picture)


def _kind_panel(manipulation: Manipulation, palette: np.ndarray) -> np.ndarray:
    """Grey where unchanged, the region's colour where warped, pale where filled; with a
    provenance, lines from some filled pixels (rings) to their sources (dots)."""
    from ..compose import FILLED, WARPED

    kind, labels = manipulation.kind, manipulation.target_labels
    region_colour = palette[labels].astype(np.float32)
    panel = np.full(labels.shape + (3,), 128.0, np.float32)
    warped, filled = kind == WARPED, kind == FILLED
    panel[warped] = region_colour[warped]
    panel[filled] = 0.35 * region_colour[filled] + 0.65 * 255
    picture = Image.fromarray(panel.astype(np.uint8))
    provenance = manipulation.provenance
    rows, cols = np.nonzero(filled)
    if provenance is None or rows.size == 0:
        return np.asarray(picture)
    height, width = labels.shape
    zoom = max(1.0, PANEL_SIZE / max(height, width))
    picture = picture.resize((round(width * zoom), round(height * zoom)), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture)
    pick = np.linspace(0, rows.size - 1, min(SOURCE_LINES, rows.size)).astype(np.int64)
    radius = max(2.0, 0.008 * PANEL_SIZE)
    for row, col in zip(rows[pick], cols[pick]):
        sx, sy = provenance.source_x[row, col], provenance.source_y[row, col]
        tx, ty = (col + 0.5) * zoom, (row + 0.5) * zoom
        fx, fy = (sx + 0.5) * zoom, (sy + 0.5) * zoom
        draw.line([(fx, fy), (tx, ty)], fill=(0, 0, 0), width=1)
        draw.ellipse([fx - radius, fy - radius, fx + radius, fy + radius], fill=(0, 0, 0))
        draw.ellipse([tx - radius, ty - radius, tx + radius, ty + radius], outline=(0, 0, 0), width=2)
    return np.asarray(picture)

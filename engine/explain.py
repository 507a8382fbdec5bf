"""The explain sheet: one picture that shows how a result was made.

Six panels: the exemplar, its region map, the target map, the keypoints (each region's exemplar
keypoints as dots, joined to their target positions, rings), the motions (which motion fills
each pixel: grey where a region stays, its colour where it moved, pale where it was filled from
its own texture nearby), and the result.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .imageio import to_rgb8
from .motion import points_to_pixels
from .pipeline import Manipulation
from .regions import colour_map, distinct_palette

PANEL_SIZE = 420
LABEL_HEIGHT = 22


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
        ("motions: stay (grey), move (colour), fill (pale)", _motion_panel(manipulation, palette)),
        ("result", to_rgb8(manipulation.pixels)),
    ]
    height, width = exemplar.shape[:2]
    scale = PANEL_SIZE / max(height, width)
    panel_w, panel_h = max(1, round(width * scale)), max(1, round(height * scale))
    columns = 3
    rows = (len(panels) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * panel_w, rows * (panel_h + LABEL_HEIGHT)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index, (label, picture) in enumerate(panels):
        x = (index % columns) * panel_w
        y = (index // columns) * (panel_h + LABEL_HEIGHT)
        resample = Image.NEAREST if "regions" in label or "motions" in label else Image.LANCZOS
        sheet.paste(Image.fromarray(picture).resize((panel_w, panel_h), resample), (x, y + LABEL_HEIGHT))
        draw.text((x + 4, y + 5), label, fill=(0, 0, 0))
    return np.asarray(sheet)


def _keypoint_panel(exemplar_rgb: np.ndarray, manipulation: Manipulation, palette: np.ndarray) -> np.ndarray:
    height, width = exemplar_rgb.shape[:2]
    target = colour_map(manipulation.target_labels, palette)
    base = (0.55 * exemplar_rgb + 0.45 * target).astype(np.uint8)
    # Draw on an enlarged copy so that small images still show legible marks.
    zoom = max(1.0, PANEL_SIZE / max(height, width))
    picture = Image.fromarray(base).resize((round(width * zoom), round(height * zoom)), Image.LANCZOS)
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


def _motion_panel(manipulation: Manipulation, palette: np.ndarray) -> np.ndarray:
    dominant = manipulation.dominant_motion
    labels = manipulation.target_labels
    if dominant is None:
        return colour_map(labels, palette)
    region_colour = palette[labels].astype(np.float32)
    panel = np.full(labels.shape + (3,), 128.0, np.float32)
    # each region's own fill motions (a model says where they start); 0 is the identity
    first_fill = np.full(labels.shape, np.iinfo(np.int16).max, np.int32)
    for region, motion in manipulation.motions.items():
        first_fill[labels == region] = motion.first_fill
    moved = (dominant >= 1) & (dominant < first_fill)
    panel[moved] = region_colour[moved]
    filled = dominant >= first_fill
    panel[filled] = 0.35 * region_colour[filled] + 0.65 * 255
    return panel.astype(np.uint8)

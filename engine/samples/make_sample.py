"""Rebuild the bundled samples and their region maps from ../shared/data/art.

    python engine/samples/make_sample.py ../shared/data/art

Cliffs at Etretat (512 x 384, the tests' sample): the exemplar map is the hand-drawn one with the
free-standing rock (the Needle) given a colour of its own; the edited map moves the Needle left
and makes it 20% taller, standing on the same waterline, and gives the place it left to the sky
and sea around it.

Water Lilies (1600 x 1052, the demo's): two regions, one red water lily (its red pixels in a box
around it, closed, filled and grown by 5 px to take in its orange rim) and the rest of the pond; the edited map moves the
lily down and to the left, onto the pads, and gives the place it left to the pond.
"""

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from engine import regions  # noqa: E402
from engine.io import imageio  # noqa: E402

NEEDLE = np.array([255, 200, 0], np.uint8)
POND, LILY = np.array([40, 90, 200], np.uint8), np.array([255, 80, 40], np.uint8)
LILY_BOX = (slice(500, 660), slice(940, 1120))  # rows, columns around the lily that moves
LILY_SHIFT = (150, -300)  # rows, columns


def _nearest(palette: np.ndarray, colour) -> int:
    return int(np.argmin(np.linalg.norm(palette.astype(float) - colour, axis=1)))


def main(art: Path) -> None:
    painting = art / "monet_cliffs_etretat.jpg"
    drawn = imageio.to_rgb8(imageio.read_image(art / "regions" / "monet_cliffs_etretat.png").pixels)
    palette = regions.dominant_colours(drawn)
    labels = regions.labels_from_colours(drawn, palette)
    # The Needle is the second-largest piece of the cliff colour.
    cliff = _nearest(palette, [255, 51, 31])
    _, pieces, stats, _ = cv2.connectedComponentsWithStats((labels == cliff).astype(np.uint8), connectivity=8)
    needle_piece = 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA])[1]
    palette = np.vstack([palette, NEEDLE])
    needle_id = len(palette) - 1
    labels[pieces == needle_piece] = needle_id

    needle = labels == needle_id
    x, y, w, h = cv2.boundingRect(needle.astype(np.uint8))
    base = np.array([x + w / 2, y + h])  # stays on the waterline
    scale, shift = np.array([1.0, 1.2]), np.array([-45.0, 0.0])
    # pulling map (target -> exemplar): z -> base + (z - base - shift) / scale
    affine = np.array([[1 / scale[0], 0, base[0] - (base[0] + shift[0]) / scale[0]],
                       [0, 1 / scale[1], base[1] - (base[1] + shift[1]) / scale[1]]])
    moved = cv2.warpAffine(needle.astype(np.uint8), affine, needle.shape[::-1],
                           flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    target = labels.copy()
    sky_or_sea = np.isin(labels, [_nearest(palette, [255, 255, 255]), _nearest(palette, [0, 0, 255])])
    _, (rows, cols) = ndimage.distance_transform_edt(~sky_or_sea, return_indices=True)
    target[needle] = labels[rows[needle], cols[needle]]  # vacated: the nearest sky or sea
    target[moved] = needle_id

    shutil.copy(painting, HERE / "etretat.jpg")
    imageio.write_image(HERE / "etretat.regions.png", regions.colour_map(labels, palette) / 255.0)
    imageio.write_image(HERE / "etretat.edited.png", regions.colour_map(target, palette) / 255.0)


def water_lilies(art: Path) -> None:
    painting = art / "monet_water_lilies_1919.jpg"
    pixels = imageio.to_rgb8(imageio.read_image(painting).pixels).astype(np.int32)
    red = (pixels[..., 0] - pixels[..., 2] > 60) & (pixels[..., 0] > 150)
    in_box = np.zeros(red.shape, np.uint8)
    in_box[LILY_BOX] = red[LILY_BOX]
    closed = cv2.morphologyEx(in_box, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    _, pieces, stats, _ = cv2.connectedComponentsWithStats(closed)
    filled = ndimage.binary_fill_holes(pieces == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    lily = cv2.dilate(filled.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))) > 0
    labels = lily.astype(np.int32)
    target = np.roll(labels, LILY_SHIFT, axis=(0, 1))
    palette = np.stack([POND, LILY])
    shutil.copy(painting, HERE / "water_lilies.jpg")
    imageio.write_image(HERE / "water_lilies.regions.png", regions.colour_map(labels, palette) / 255.0)
    imageio.write_image(HERE / "water_lilies.edited.png", regions.colour_map(target, palette) / 255.0)


if __name__ == "__main__":
    water_lilies(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "art")
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "art")

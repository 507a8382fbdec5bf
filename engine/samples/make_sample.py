"""Rebuild the bundled sample's region maps from the hand-drawn map in ../shared/data/art.

    python engine/samples/make_sample.py ../shared/data/art

The exemplar map is the hand-drawn one with the free-standing rock (the Needle) given a colour
of its own; the edited map moves the Needle left and makes it 20% taller, standing on the same
waterline, and gives the place it left to the sky and sea around it.
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


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data" / "art")

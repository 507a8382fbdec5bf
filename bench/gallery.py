"""The gallery: seven kinds of edit on public-domain paintings, before and after layered
composition, with 2x crops of the place the object left and of its new joins.

    python bench/gallery.py --before-repo DIR [--out bench/results/gallery.jpg]
                            [--kinds KIND...] [--every-painting]

Paintings: the bundled sample and, when ../shared/data/art is beside the checkout, the paintings
with hand-painted region maps there. Each edit is built from the painting's map: the most
figure-like region (bench/edits.py) is moved, enlarged, shrunk, deleted, swapped with the next
most figure-like one, bent (a smooth non-rigid reshape), or moved by masks (a feathered
selection). "before" is the engine of the checkout at DIR (a worktree of the commit before this
work), run in its own process; "after" is this one. --every-painting: each kind on every
painting, not one painting per kind. Rows: painting | target map | before |
after | the vacated area, before and after (2x) | a join, before and after (2x).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.edits import figure_regions  # noqa: E402
from bench.methods import run_before  # noqa: E402
from bench.quality import SHARED_ART, load  # noqa: E402
from engine import (  # noqa: E402
    regions,
    run,
    samples,  # noqa: E402
)
from engine.edit import Edit  # noqa: E402
from engine.fill import nearest_pixel  # noqa: E402
from engine.io import imageio  # noqa: E402
from engine.pipeline import manipulate_masks  # noqa: E402

HERE = Path(__file__).resolve().parent
KINDS = ("move", "enlarge", "shrink", "delete", "swap", "reshape", "move by masks")
TILE = 240
CROP = 96  # side of a crop, shown at 2x
SIZE = 640
def relabel_from_neighbours(labels: np.ndarray, vacated: np.ndarray, keep_out: set[int]) -> np.ndarray:
    """labels (H, W) with the `vacated` pixels given the label of the nearest pixel that is
    neither vacated nor of a region in keep_out."""
    donors = ~vacated & ~np.isin(labels, list(keep_out))
    result = labels.copy()
    result[vacated] = labels.ravel()[nearest_pixel(donors)[vacated]]
    return result


def warp_mask(mask: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """mask (H, W) bool pulled by the pixel affine (2, 3) (target z samples mask at pull @ z)."""
    height, width = mask.shape
    flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(mask.astype(np.uint8), pull, (width, height), flags=flags) > 0


def about_centre(mask: np.ndarray, scale: float, shift=(0.0, 0.0)) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    centre = np.array([cols.mean(), rows.mean()])
    linear = np.eye(2) / scale
    return np.hstack([linear, (centre - linear @ (centre + np.asarray(shift)))[:, None]])


def bend(mask: np.ndarray, amount: float) -> np.ndarray:
    """The mask bent sideways: rows shifted by amount * width * (height above the base)^2."""
    rows, cols = np.nonzero(mask)
    top, bottom = rows.min(), rows.max()
    width = cols.max() - cols.min() + 1
    height, full_width = mask.shape
    ys, xs = np.mgrid[0:height, 0:full_width].astype(np.float32)
    rise = np.clip((bottom - ys) / max(bottom - top, 1), 0, 1)
    map_x = (xs - amount * width * rise**2).astype(np.float32)
    return cv2.remap(mask.astype(np.uint8), map_x, ys, cv2.INTER_NEAREST) > 0


def build(kind: str, labels: np.ndarray):
    """The target map for `kind` from an exemplar map, the two masks of a mask edit (or None),
    and the ids of the regions edited."""
    first, second = figure_regions(labels)[:2]
    figure = labels == first
    rows, cols = np.nonzero(figure)
    width = cols.max() - cols.min() + 1
    height, full_width = labels.shape
    room_right = full_width - 1 - cols.max()
    shift = (0.7 * width if room_right > cols.min() else -0.7 * width, 0.0)
    if kind in ("move", "move by masks"):
        placed = warp_mask(figure, about_centre(figure, 1.0, shift))
    elif kind == "enlarge":
        placed = warp_mask(figure, about_centre(figure, 1.3))
    elif kind == "shrink":
        placed = warp_mask(figure, about_centre(figure, 0.7))
    elif kind == "reshape":
        placed = bend(figure, 0.35)
    elif kind == "delete":
        placed = np.zeros_like(figure)
    elif kind == "swap":
        other = labels == second
        (fy, fx), (oy, ox) = np.argwhere(figure).mean(0), np.argwhere(other).mean(0)
        to_other = warp_mask(figure, about_centre(figure, 1.0, (ox - fx, oy - fy)))
        to_first = warp_mask(other, about_centre(other, 1.0, (fx - ox, fy - oy)))
        target = relabel_from_neighbours(labels, figure | other, {first, second})
        target[to_other] = first
        target[to_first] = second
        return target, None, (first, second)
    else:
        raise ValueError(kind)
    target = relabel_from_neighbours(labels, figure, {first})
    target[placed] = first
    if kind == "move by masks":
        soft = lambda m: cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.5)  # noqa: E731
        return target, (soft(figure), soft(placed)), (first,)
    return target, None, (first,)


def engine_after(exemplar, labels, target, masks):
    if masks is not None:
        return manipulate_masks(exemplar, masks[0], masks[1])
    return run(exemplar, Edit(labels, target)).pixels


def engine_before(repo: Path, exemplar, labels, target, masks):
    if masks is not None:
        return run_before(repo, {"exemplar": exemplar, "source_mask": masks[0], "target_mask": masks[1]})
    return run_before(repo, {"exemplar": exemplar, "exemplar_labels": labels, "target_labels": target})


def crop_around(mask: np.ndarray, side: int):
    """A side x side window (rows, cols slices) centred on the mask's centre of mass."""
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    cy, cx = (int(rows.mean()), int(cols.mean())) if rows.size else (height // 2, width // 2)
    top = int(np.clip(cy - side // 2, 0, max(0, height - side)))
    left = int(np.clip(cx - side // 2, 0, max(0, width - side)))
    return slice(top, top + side), slice(left, left + side)


def paintings() -> list[Path]:
    found = [samples.EXEMPLAR]
    if (SHARED_ART / "regions").is_dir():
        found += [SHARED_ART / (p.stem + ".jpg") for p in sorted((SHARED_ART / "regions").glob("*.png"))
                  if p.stem != "monet_cliffs_etretat" and (SHARED_ART / (p.stem + ".jpg")).is_file()]
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-repo", type=Path, required=True, help="a checkout of the engine before this work")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gallery.jpg")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--every-painting", action="store_true", help="each kind on every painting")
    args = parser.parse_args(argv)
    sources = paintings()
    if args.every_painting:
        rows = [(kind, path) for kind in args.kinds for path in sources]
    else:
        rows = [(kind, sources[KINDS.index(kind) % len(sources)]) for kind in args.kinds]
    columns = ("painting", "target map", "before", "after", "left, before (2x)", "left, after (2x)",
               "join, before (2x)", "join, after (2x)")
    sheet = Image.new("RGB", (len(columns) * TILE, 20 + len(rows) * (TILE + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, name in enumerate(columns):
        draw.text((index * TILE + 4, 4), name, fill="black")
    for row, (kind, path) in enumerate(rows):
        exemplar, labels = load(path, SIZE, 8)
        target, masks, edited = build(kind, labels)
        before = engine_before(args.before_repo.resolve(), exemplar, labels, target, masks)
        after = engine_after(exemplar, labels, target, masks)
        left = np.isin(labels, edited) & ~np.isin(target, edited)
        left = left if left.any() else labels != target
        placed = np.isin(target, edited)
        edge = placed & ~cv2.erode(placed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        palette = regions.distinct_palette(int(max(labels.max(), target.max())) + 1)
        tiles = [imageio.to_rgb8(exemplar), regions.colour_map(target, palette), imageio.to_rgb8(before), imageio.to_rgb8(after)]
        for mask in (left, edge if edge.any() else left):
            window = crop_around(mask, CROP)
            for picture in (before, after):
                tiles.append(np.repeat(np.repeat(imageio.to_rgb8(picture[window]), 2, axis=0), 2, axis=1))
        y = 20 + row * (TILE + 18)
        draw.text((4, y), f"{kind} ({path.stem})", fill="black")
        for column, tile in enumerate(tiles):
            image = Image.fromarray(tile)
            image.thumbnail((TILE, TILE), Image.NEAREST if column >= 4 else Image.LANCZOS)
            sheet.paste(image, (column * TILE, y + 16))
        print(f"{kind}: done", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

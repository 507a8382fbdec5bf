"""Before/after crops of reshape edits with exact ground truth (bench/edits.py tps and bend).

    python bench/reshape_sheet.py --before-repo DIR [--paintings NAME ...] [--out FILE]

For each painting (default: two held-out ones) one tps and one bend edit at 512 px, seed 0.
Each row is a 128-px window, shown at 2x, where the engine at DIR (run in its own process)
was furthest from the truth: ground truth | before | after (this checkout, `moments`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.edits import make_edits  # noqa: E402
from bench.methods import before_method  # noqa: E402
from bench.quality import SHARED_ART, load  # noqa: E402
from engine import run  # noqa: E402
from engine.edit import Edit  # noqa: E402
from engine.io import imageio  # noqa: E402

HERE = Path(__file__).resolve().parent
WINDOW = 128


def worst_window(error: np.ndarray) -> tuple[int, int]:
    """The top-left corner (y, x) of the WINDOW x WINDOW window of `error` (H, W) with the
    largest mean."""
    height, width = error.shape
    mean = cv2.boxFilter(error.astype(np.float32), -1, (WINDOW, WINDOW))
    y, x = np.unravel_index(int(np.argmax(mean)), mean.shape)
    return int(np.clip(y - WINDOW // 2, 0, height - WINDOW)), int(np.clip(x - WINDOW // 2, 0, width - WINDOW))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-repo", type=Path, required=True, help="a checkout of the engine before this work")
    parser.add_argument("--data", type=Path, default=SHARED_ART)
    parser.add_argument("--paintings", nargs="+", default=["hokusai_great_wave", "vermeer_girl_with_a_pearl_earring"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "reshape_crops.jpg")
    args = parser.parse_args(argv)
    before = before_method(args.before_repo.resolve(), "moments")
    rows, labels_text = [], []
    for name in args.paintings:
        pixels, labels = load(args.data / f"{name}.jpg", 512, 32)[:2]
        for edit in make_edits(pixels, labels, 2, 0, ("tps", "bend")):
            after = run(pixels, Edit(edit.exemplar_labels, edit.target_labels), model="moments").pixels
            old = before(pixels, edit.exemplar_labels, edit.target_labels)[0]
            y, x = worst_window(np.abs(old - edit.ground_truth).mean(axis=-1) * edit.changed)
            window = (slice(y, y + WINDOW), slice(x, x + WINDOW))
            rows.append(np.concatenate([imageio.to_rgb8(image[window]) for image in (edit.ground_truth, old, after)], 1))
            labels_text.append(f"{name} {edit.kind}")
    tile = 2 * WINDOW
    sheet = Image.new("RGB", (3 * tile, 20 + len(rows) * (tile + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(("ground truth (2x)", "before (2x)", "after (2x)")):
        draw.text((column * tile + 4, 4), title, fill="black")
    for index, (row, text) in enumerate(zip(rows, labels_text)):
        top = 20 + index * (tile + 16)
        draw.text((4, top), text, fill="black")
        sheet.paste(Image.fromarray(row).resize((3 * tile, tile), Image.NEAREST), (0, top + 14))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The README's model comparison: for 4 held-out paintings, exemplar | target map | `moments` |
the learned model, on one synthetic edit each (bench/edits.py, fixed seed).

    python bench/compare_figure.py [--data DIR] [--names A B C D] [--model simnet-small]
                                   [--out bench/results/compare_models.jpg]
Needs ../shared/data/art (or --data) for the paintings; skips cleanly without it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.edits import make_edit  # noqa: E402
from bench.quality import SHARED_ART, artworks, load  # noqa: E402
from engine import regions, run  # noqa: E402
from engine.edit import Edit  # noqa: E402
from engine.io import imageio  # noqa: E402

HERE = Path(__file__).resolve().parent
HELD_OUT = ("vermeer_girl_with_a_pearl_earring", "hokusai_great_wave", "vangogh_bedroom_in_arles", "seurat_grande_jatte")
KINDS = ("move", "scale", "rotate", "tps")
TILE = 256
LABEL = 18


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED_ART)
    parser.add_argument("--names", nargs=4, default=list(HELD_OUT))
    parser.add_argument("--model", default="simnet-small")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compare_models.jpg")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"skipped: no paintings at {args.data}", file=sys.stderr)
        return
    paths = {p.stem: p for p in artworks(args.data)}
    rows = []
    for number, name in enumerate(args.names):
        pixels, labels = load(paths[name], TILE * 2, 8)
        edit = make_edit(pixels, labels, KINDS[number % len(KINDS)], np.random.default_rng(number))
        palette = regions.distinct_palette(int(max(edit.exemplar_labels.max(), edit.target_labels.max())) + 1)
        results = [run(edit.exemplar, Edit(edit.exemplar_labels, edit.target_labels), model=m).pixels for m in ("moments", args.model)]
        rows.append([imageio.to_rgb8(edit.exemplar), regions.colour_map(edit.target_labels, palette),
                     *(imageio.to_rgb8(r) for r in results)])
    titles = ["exemplar", "target map", "moments (baseline)", args.model]
    sheet = Image.new("RGB", (4 * TILE, LABEL + len(rows) * TILE), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(titles):
        draw.text((column * TILE + 4, 3), title, fill="black")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            image = Image.fromarray(tile[:, :, :3] if tile.ndim == 3 else tile)
            image.thumbnail((TILE, TILE))
            sheet.paste(image, (c * TILE + (TILE - image.width) // 2, LABEL + r * TILE + (TILE - image.height) // 2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The README's before/after picture, from `simnet demo`: the painting, the old and new region
maps overlaid, and the result, scaled to PANEL_WIDTH; below them, at the painting's own
resolution (1:1), the place the lily left and its new place, before and after.

    python bench/readme_figure.py [--out FILE]    # default: bench/results/demo_before_after.jpg
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine import samples
from engine.app.cli import main
from engine.io import imageio
from engine.models import default_model

OUTPUT = Path(__file__).resolve().parent / "results" / "demo_before_after.jpg"


PANEL_WIDTH = 640
CROP_MARGIN = 40


def _crop_around(mask: np.ndarray, margin: int = CROP_MARGIN) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return (slice(max(0, rows.min() - margin), min(height, rows.max() + 1 + margin)),
            slice(max(0, cols.min() - margin), min(width, cols.max() + 1 + margin)))


def figure(output: Path = OUTPUT) -> None:
    demo = samples.DEMO
    with tempfile.TemporaryDirectory() as folder:
        if main(["--quiet", "demo", "-o", folder]) != 0:
            sys.exit("simnet demo failed")
        result = imageio.to_rgb8(imageio.read_image(Path(folder) / f"{demo.name}.result.png").pixels)
    exemplar = imageio.to_rgb8(imageio.read_image(demo.exemplar).pixels)
    edited = imageio.to_rgb8(imageio.read_image(demo.edited).pixels)
    before = imageio.to_rgb8(imageio.read_image(demo.regions).pixels)
    maps = (0.5 * before + 0.5 * edited).astype(np.uint8)  # old and new layout together
    height, width = exemplar.shape[:2]
    panel_height = round(height * PANEL_WIDTH / width)
    pond = before[0, 0]  # the corner is the pond, the region the lily's old place becomes
    left = _crop_around(np.any(before != pond, axis=2))
    placed = _crop_around(np.any(edited != pond, axis=2))
    crops = [(exemplar[left], "where the lily was: before (1:1)"), (result[left], "after (1:1)"),
             (exemplar[placed], "its new place: before (1:1)"), (result[placed], "after (1:1)")]
    label = 20
    crop_height = max(c.shape[0] for c, _ in crops)
    sheet = Image.new("RGB", (3 * PANEL_WIDTH, panel_height + crop_height + 2 * label), "white")
    draw = ImageDraw.Draw(sheet)
    captions = ("before (the painting)", "region maps: old and new layout overlaid", f"after ({default_model()[0]}, the default model)")
    for index, (picture, caption) in enumerate(zip((exemplar, maps, result), captions)):
        small = Image.fromarray(picture).resize((PANEL_WIDTH, panel_height), Image.LANCZOS)
        sheet.paste(small, (index * PANEL_WIDTH, label))
        draw.text((index * PANEL_WIDTH + 4, 4), caption, fill="black")
    x = 0
    top = panel_height + label
    for picture, caption in crops:
        sheet.paste(Image.fromarray(picture), (x, top + label))
        draw.text((x + 4, top + 4), caption, fill="black")
        x += picture.shape[1] + 8
    output.parent.mkdir(exist_ok=True)
    sheet.save(output, quality=88)
    print(f"wrote {output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    figure(parser.parse_args().out)

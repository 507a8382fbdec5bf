"""The README's before/after of a layered file: one edit, every layer (`simnet batch --together`).

    python bench/layers_figure.py [--model NAME] [--out FILE]   # default: bench/results/layers_before_after.jpg

The bundled painting is split into two layers as an illustrator keeps them: line art (its
edges as 1-px ink on transparency) over flat colours (the painting smoothed). The demo's edit
(the Needle moved) is solved once on the flat colours and replayed on both layers by
`simnet batch layers.ora --together --solve-on colours`. The sheet shows each layer and the
merged picture before and after, and 2x crops of the moved Needle's line art over its colours
(they must line up) and of the place it left.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import samples  # noqa: E402
from engine.app.cli import main  # noqa: E402
from engine.edit import from_colour_maps  # noqa: E402
from engine.io import imageio  # noqa: E402
from engine.io.ora import Document, Layer, flatten, read_ora, write_ora  # noqa: E402
from engine.masks import bounding_box  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "results" / "layers_before_after.jpg"
LABEL = 18


def layers_of(painting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line art, flat colours), each (H, W, 4) float32: ink where the painting has edges, and
    the painting with its brushwork smoothed away."""
    rgb8 = imageio.to_rgb8(painting)
    flat = cv2.bilateralFilter(cv2.medianBlur(rgb8, 5), 9, 60, 9)
    edges = cv2.Canny(cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY), 40, 110) > 0
    lines = np.zeros(painting.shape[:2] + (4,), np.float32)
    lines[edges] = (0.08, 0.06, 0.05, 1.0)
    colours = np.dstack([flat / np.float32(255), np.ones(painting.shape[:2], np.float32)])
    return lines, colours


def on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA (H, W, 4) over a light checker, as an 8-bit RGB picture of what the layer holds."""
    ys, xs = np.mgrid[0 : rgba.shape[0], 0 : rgba.shape[1]]
    checker = np.where(((ys // 8 + xs // 8) % 2)[..., None] == 0, 1.0, 0.86).astype(np.float32)
    alpha = rgba[..., 3:4]
    return imageio.to_rgb8(rgba[..., :3] * alpha + checker * (1 - alpha))


def moved_boxes(height: int, width: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Where the demo's edit puts the region that changes most, and where it was (x0, y0, x1, y1),
    the same size, a little margin around."""
    edit = from_colour_maps(imageio.read_rgb8(samples.REGIONS), imageio.read_rgb8(samples.EDITED)).fitted(height, width)
    changed = edit.exemplar_labels != edit.target_labels
    ids, counts = np.unique(edit.target_labels[changed], return_counts=True)
    region = int(ids[np.argmax(counts)])
    boxes = [bounding_box(edit.target_labels == region, 6), bounding_box(edit.exemplar_labels == region, 6)]
    w = max(b[2] - b[0] for b in boxes)
    h = max(b[3] - b[1] for b in boxes)
    fitted = []
    for x0, y0, _, _ in boxes:  # both crops the same size, inside the picture
        x0, y0 = min(x0, width - w), min(y0, height - h)
        fitted.append((x0, y0, x0 + w, y0 + h))
    return fitted[0], fitted[1]


def crop2x(picture: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return cv2.resize(picture[y0:y1, x0:x1], ((x1 - x0) * 2, (y1 - y0) * 2), interpolation=cv2.INTER_NEAREST)


def figure(model: str | None, output: Path) -> None:
    painting = imageio.read_image(samples.EXEMPLAR).pixels
    lines, colours = layers_of(painting)
    with tempfile.TemporaryDirectory() as folder:
        source, result = Path(folder) / "layers.ora", Path(folder) / "moved.ora"
        write_ora(source, Document(painting.shape[1], painting.shape[0], [Layer("line art", lines), Layer("colours", colours)]))
        command = ["--quiet", "batch", str(source), "-o", str(result), "--together", "--solve-on", "colours",
                   "--regions", str(samples.REGIONS), "--target", str(samples.EDITED)] + (["--model", model] if model else [])
        if main(command) != 0:
            sys.exit("simnet batch --together failed")
        before, after = read_ora(source), read_ora(result)
        panels = []
        for document in (before, after):
            named = {layer.name: layer.pixels for layer in document.layers}
            panels.append([on_white(named["line art"]), on_white(named["colours"]), on_white(flatten(document))])
    height, width = painting.shape[:2]
    moved_to, moved_from = moved_boxes(height, width)
    zooms = [crop2x(panels[1][2], moved_to), crop2x(panels[0][2], moved_from), crop2x(panels[1][2], moved_from)]
    captions = [["before: line art", "before: flat colours", "before: merged"],
                ["after: line art", "after: flat colours", "after: merged"]]
    zoom_captions = ["after, 2x: the moved Needle, ink over colours", "before, 2x: where it stood", "after, 2x: the place it left"]
    zoom_h, zoom_w = zooms[0].shape[:2]
    sheet = Image.new("RGB", (max(3 * width, 3 * zoom_w), 2 * (height + LABEL) + zoom_h + LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (pictures, texts) in enumerate(zip(panels, captions)):
        for column, (picture, text) in enumerate(zip(pictures, texts)):
            x, y = column * width, row * (height + LABEL)
            sheet.paste(Image.fromarray(picture), (x, y + LABEL))
            draw.text((x + 4, y + 3), text, fill="black")
    top = 2 * (height + LABEL)
    for column, (picture, text) in enumerate(zip(zooms, zoom_captions)):
        sheet.paste(Image.fromarray(picture), (column * zoom_w, top + LABEL))
        draw.text((column * zoom_w + 4, top + 3), text, fill="black")
    output.parent.mkdir(exist_ok=True)
    sheet.save(output, quality=90)
    print(f"wrote {output}")


def main_cli(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the engine's default model")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    figure(args.model, args.out)


if __name__ == "__main__":
    main_cli()

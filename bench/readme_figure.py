"""The README's before/after picture: exemplar | edited region map | result, from `simnet demo`.

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


def figure(output: Path = OUTPUT) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if main(["--quiet", "demo", "-o", folder]) != 0:
            sys.exit("simnet demo failed")
        result = imageio.to_rgb8(imageio.read_image(Path(folder) / "etretat.result.png").pixels)
    exemplar = imageio.to_rgb8(imageio.read_image(samples.EXEMPLAR).pixels)
    edited = imageio.to_rgb8(imageio.read_image(samples.EDITED).pixels)
    before = imageio.to_rgb8(imageio.read_image(samples.REGIONS).pixels)
    maps = (0.5 * before + 0.5 * edited).astype(np.uint8)  # old and new layout together
    height, width = exemplar.shape[:2]
    label = 20
    sheet = Image.new("RGB", (3 * width, height + label), "white")
    draw = ImageDraw.Draw(sheet)
    captions = ("before (the exemplar)", "region maps: old and new layout overlaid", f"after ({default_model()[0]}, the default model)")
    for index, (picture, caption) in enumerate(zip((exemplar, maps, result), captions)):
        sheet.paste(Image.fromarray(picture), (index * width, label))
        draw.text((index * width + 4, 4), caption, fill="black")
    output.parent.mkdir(exist_ok=True)
    sheet.save(output, quality=88)
    print(f"wrote {output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    figure(parser.parse_args().out)

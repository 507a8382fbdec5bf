"""Assemble a training folder: `python -m engine.simnet.gather OUT [--art DIR] [--skimage]
[--exclude NAME...]`. Copies (or links) artworks, with their region maps when they have them,
and writes scikit-image's bundled pictures (shipped inside its package, so nothing is
downloaded). Prints what went in, for the model card."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np

from .data import MAP_SUFFIX, artwork_files

# scikit-image's bundled colour pictures and grey textures that can stand for artwork textures.
SKIMAGE_PICTURES = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
    "brick", "grass", "gravel", "camera", "coins", "moon", "colorwheel", "retina",
)


def gather(out: Path, art: Path | None, use_skimage: bool, exclude: set[str]) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    names = []
    if art is not None:
        for path in artwork_files(art):
            if path.name in exclude or path.stem in exclude:
                continue
            shutil.copyfile(path, out / path.name)
            regions = path.with_name(path.stem + MAP_SUFFIX)
            if regions.exists():
                shutil.copyfile(regions, out / regions.name)
            names.append(path.name)
    if use_skimage:
        import skimage.data

        for name in SKIMAGE_PICTURES:
            pixels = np.asarray(getattr(skimage.data, name)())
            if pixels.ndim == 3:
                pixels = cv2.cvtColor(pixels[:, :, :3], cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(out / f"skimage_{name}.png"), pixels)
            names.append(f"skimage_{name}.png")
    return names


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.simnet.gather", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--art", type=Path, help="a folder of artworks (e.g. ../shared/data/art)")
    parser.add_argument("--skimage", action="store_true", help="add scikit-image's bundled pictures")
    parser.add_argument("--exclude", nargs="*", default=[], help="artworks to hold out (names or stems)")
    args = parser.parse_args(argv)
    names = gather(args.out, args.art, args.skimage, set(args.exclude))
    print(f"{len(names)} images in {args.out}: {', '.join(names)}")


if __name__ == "__main__":
    main()

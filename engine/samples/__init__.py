"""The bundled samples, each a painting, its region map and an edited map, rebuilt by
make_sample.py:
- Monet's Cliffs at Etretat, 512 x 384 (etretat.*): the edit moves the Needle. Small, for tests
  and benchmarks.
- Monet's Water Lilies (1919), 1600 x 1052 (water_lilies.*): the edit moves a red water lily.
  The demo's, at a size that shows the full-resolution result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..edit import Edit, from_colour_maps
from ..io import imageio

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SampleFiles:
    """One sample's files: the painting, its region map and the edited map."""

    name: str
    exemplar: Path
    regions: Path
    edited: Path


def _files(name: str) -> SampleFiles:
    return SampleFiles(name, FOLDER / f"{name}.jpg", FOLDER / f"{name}.regions.png", FOLDER / f"{name}.edited.png")


ETRETAT = _files("etretat")
WATER_LILIES = _files("water_lilies")
DEMO = WATER_LILIES
# the tests' and benchmarks' sample
EXEMPLAR, REGIONS, EDITED = ETRETAT.exemplar, ETRETAT.regions, ETRETAT.edited


@dataclass(frozen=True)
class Sample:
    picture: imageio.Picture
    edit: Edit


def load_sample(max_pixels: int = imageio.DEFAULT_MAX_PIXELS, files: SampleFiles = ETRETAT) -> Sample:
    """A sample's exemplar and its edit (from the two painted maps)."""
    picture = imageio.read_image(files.exemplar, max_pixels)
    edit = from_colour_maps(imageio.read_rgb8(files.regions, max_pixels), imageio.read_rgb8(files.edited, max_pixels))
    return Sample(picture, edit)

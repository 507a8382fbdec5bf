"""The bundled sample: Monet's Cliffs at Etretat (etretat.jpg), its painted region map
(etretat.regions.png) and an edited layout that moves the Needle (etretat.edited.png); rebuilt
by make_sample.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..edit import Edit, from_colour_maps
from ..io import imageio

FOLDER = Path(__file__).resolve().parent
EXEMPLAR = FOLDER / "etretat.jpg"
REGIONS = FOLDER / "etretat.regions.png"
EDITED = FOLDER / "etretat.edited.png"


@dataclass(frozen=True)
class Sample:
    picture: imageio.Picture
    edit: Edit


def load_sample(max_pixels: int = imageio.DEFAULT_MAX_PIXELS) -> Sample:
    """The sample's exemplar and its edit (from the two painted maps)."""
    picture = imageio.read_image(EXEMPLAR, max_pixels)
    edit = from_colour_maps(imageio.read_rgb8(REGIONS, max_pixels), imageio.read_rgb8(EDITED, max_pixels))
    return Sample(picture, edit)

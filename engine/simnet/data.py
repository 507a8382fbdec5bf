"""Training data: a folder of artworks (and optional region maps) -> batches of region pairs.

Pairs are made on the fly from each artwork and its map, never read from disk:
- exact ground truth (most pairs): a known random pulling warp, an affine about one region's
  centroid (move, scale, turn, shear) and/or a global thin-plate spline, applied to the artwork
  and the region's mask alike. The warped artwork is the pixel truth inside the warped mask.
- identity pairs: the target mask is the source mask, the truth the exemplar (staying put).
- reference-style pairs: region r must fill the shape of another region r' (SIM-Net's own
  training); there is no pixel truth, only the mask and style losses apply.
- layout pairs, the edit an artist makes: one region moved, scaled or turned, its neighbours
  stretching to make room (the warp fades to the identity over a band around its new place);
  the pair is that region or, more often, one of its neighbours, whose truth is mostly the
  identity. Exact ground truth too.
Crops and colour jitter apply to the artwork before the pair is made, so the exemplar, its map
and the truth always agree (nothing is ever flipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..io.imageio import READ_SUFFIXES, read_image, read_rgb8
from ..io.pixels import rgb_channels
from ..models.moments import align
from ..motion import pixel_to_normalised_affines
from ..regions import dominant_colours, labels_from_colours, resize_labels
from ..segment import segment

MAP_SUFFIX = ".regions.png"
# Artworks are kept in memory at most this long side (crops are resampled to the working size).
STORE_SIDE = 512
# A region is worth training on when it covers this share of the crop.
REGION_SHARE = (0.02, 0.8)
PAIR_KINDS = ("exact", "identity", "reference", "layout")
PAIR_ODDS = (0.35, 0.05, 0.1, 0.5)


@dataclass(frozen=True)
class Artwork:
    name: str
    pixels: np.ndarray  # (H, W, 3) float32 in [0, 1]
    labels: np.ndarray  # (H, W) int32
    map_source: str  # "file" or "segmented"


def artwork_files(folder: Path) -> list[Path]:
    """The artworks of a training folder (region maps beside them are not artworks)."""
    if not folder.is_dir():
        raise InputError(f"the training data folder {folder} does not exist")
    return sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in READ_SUFFIXES and not p.name.endswith(MAP_SUFFIX) and not p.name.startswith(".")
    )


def load_artworks(folder: Path, exclude: frozenset[str] | set[str] = frozenset(), log=print) -> list[Artwork]:
    """Read every artwork of `folder` (except the names in `exclude`) with its region map,
    segmenting those that have none. Unreadable images and maps that do not fit their image are
    errors naming every such file: nothing is trained on a half-read folder."""
    files = [p for p in artwork_files(folder) if p.name not in exclude and p.stem not in exclude]
    if not files:
        raise InputError(f"no images to train on in {folder} (looked for {', '.join(sorted(READ_SUFFIXES))})")
    artworks, problems = [], []
    for path in files:
        try:
            artworks.append(_load_one(path, log))
        except (InputError, ValueError, cv2.error) as error:
            problems.append(f"{path.name}: {error}")
    if problems:
        raise InputError("cannot train on this folder:\n  " + "\n  ".join(problems))
    return artworks


def _load_one(path: Path, log) -> Artwork:
    pixels = read_image(path).pixels
    height, width = pixels.shape[:2]
    if min(height, width) < 64:
        raise InputError(f"is {width}x{height}; training needs at least 64 pixels on each side")
    rgb = rgb_channels(pixels)
    if pixels.shape[2] == 4:  # composite transparent areas over white, as a host would show them
        rgb = rgb * pixels[:, :, 3:] + (1.0 - pixels[:, :, 3:])
    map_path = path.with_name(path.stem + MAP_SUFFIX)
    if map_path.exists():
        colours = read_rgb8(map_path)
        if colours.shape[:2] != (height, width):
            raise InputError(
                f"its region map {map_path.name} is {colours.shape[1]}x{colours.shape[0]}, not {width}x{height}"
            )
        labels, source = labels_from_colours(colours, dominant_colours(colours)), "file"
    else:
        labels, source = None, "segmented"
    factor = min(1.0, STORE_SIDE / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if labels is not None:
            labels = resize_labels(labels, size[1], size[0])
    if labels is None:
        labels = segment(rgb.astype(np.float32))
        log(f"segmented {path.name}: {labels.max() + 1} regions")
    return Artwork(path.stem, np.clip(rgb, 0, 1).astype(np.float32), labels.astype(np.int32), source)


@dataclass(frozen=True)
class Batch:
    """Numpy arrays, channels first: exemplar (B, 3, S, S), source/target masks (B, 1, S, S),
    truth (B, 3, S, S), truth_weight (B, 1, S, S) (where the truth is exact: 0 for reference
    pairs and where the warp samples outside the crop), kinds (B,) indices into PAIR_KINDS,
    prior (B, 2, 3): the baseline's alignment of each pair (normalised pulling affine), as the
    engine computes it at inference, and the exact pulling field (B, 2, S, S) that made the
    truth (normalised exemplar x, y of every target pixel, grid_sample's convention; it holds
    where the truth does, truth_weight)."""

    exemplar: np.ndarray
    source_mask: np.ndarray
    target_mask: np.ndarray
    truth: np.ndarray
    truth_weight: np.ndarray
    kinds: np.ndarray
    prior: np.ndarray
    field: np.ndarray


class PairSampler:
    """Draws batches of training pairs at `size` x `size` from artworks, reproducibly from `rng`."""

    def __init__(self, artworks: list[Artwork], size: int, rng: np.random.Generator):
        self.artworks = artworks
        self.size = size
        self.rng = rng

    def batch(self, count: int) -> Batch:
        items = [self.pair() for _ in range(count)]
        return Batch(*(np.stack([item[i] for item in items]) for i in range(8)))

    def pair(self):
        rng, s = self.rng, self.size
        while True:
            pixels, labels = self._crop(self.artworks[rng.integers(len(self.artworks))])
            regions = _candidate_regions(labels)
            if regions.size:
                break
        region = int(rng.choice(regions))
        source = (labels == region).astype(np.float32)
        kind = int(rng.choice(len(PAIR_KINDS), p=PAIR_ODDS))
        ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
        identity = np.stack([xs, ys], axis=-1)  # a pulling field in pixels
        field = identity
        if kind == 1:
            target, truth, weight = source, pixels, source
        elif kind == 2 and regions.size > 1:
            other = int(rng.choice(regions[regions != region]))
            target = (labels == other).astype(np.float32)
            truth, weight = pixels, np.zeros_like(source)
        else:
            if kind == 3:
                field = layout_pull(source, rng)
                neighbours = np.intersect1d(np.unique(labels[_near(source)]), regions)  # big enough to train on
                if neighbours.size and rng.random() < 0.7:  # a neighbour that makes room
                    region = int(rng.choice(neighbours))
                    source = (labels == region).astype(np.float32)
            else:
                kind = 0
                field = random_pull(source, rng)
            truth = cv2.remap(pixels, field[..., 0], field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            target = (cv2.remap(source, field[..., 0], field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 0.5).astype(np.float32)
            inside = ((field[..., 0] >= -0.5) & (field[..., 0] <= s - 0.5) & (field[..., 1] >= -0.5) & (field[..., 1] <= s - 0.5))
            weight = target * inside
            if target.sum() < 4:  # warped out of the crop: fall back to staying put
                kind, target, truth, weight, field = 1, source, pixels, source, identity
        return (
            pixels.transpose(2, 0, 1),
            source[None],
            target[None],
            truth.transpose(2, 0, 1),
            weight[None].astype(np.float32),
            np.int64(kind),
            prior_affine(source > 0.5, target > 0.5),
            ((2.0 * field + 1.0) / s - 1.0).transpose(2, 0, 1).astype(np.float32),
        )

    def _crop(self, artwork: Artwork) -> tuple[np.ndarray, np.ndarray]:
        """A random square crop (half to all of the short side), resampled to the working size,
        with colour jitter."""
        rng, s = self.rng, self.size
        height, width = artwork.labels.shape
        side = int(min(height, width) * rng.uniform(0.5, 1.0))
        y0, x0 = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        pixels = cv2.resize(artwork.pixels[y0 : y0 + side, x0 : x0 + side], (s, s), interpolation=cv2.INTER_AREA)
        labels = resize_labels(artwork.labels[y0 : y0 + side, x0 : x0 + side], s, s)
        return jitter_colours(pixels, rng), labels


def prior_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The baseline's alignment of two non-empty masks (S, S) bool: a normalised pulling affine
    (2, 3) float32."""
    size = source.shape[0]
    return pixel_to_normalised_affines(align(source, target).primary, size, size).astype(np.float32)


def _candidate_regions(labels: np.ndarray) -> np.ndarray:
    counts = np.bincount(labels.ravel())
    share = counts / labels.size
    return np.flatnonzero((share >= REGION_SHARE[0]) & (share <= REGION_SHARE[1]))


def jitter_colours(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and a small hue turn: (S, S, 3) -> (S, S, 3) in [0, 1]."""
    grey = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    saturation = rng.uniform(0.7, 1.3)
    out = grey[..., None] + (pixels - grey[..., None]) * saturation
    angle = rng.uniform(-0.15, 0.15)  # radians, about the grey axis
    axis = np.ones(3, np.float32) / np.sqrt(3.0)
    cos, sin = np.cos(angle), np.sin(angle)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], np.float32)
    rotation = cos * np.eye(3, dtype=np.float32) + sin * cross + (1 - cos) * np.outer(axis, axis)
    out = out @ rotation.T.astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.8, 1.2) + mean + rng.uniform(-0.08, 0.08)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def random_pull(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A pulling field (S, S, 2) float32 in pixels: an affine about the mask's centroid (with
    probability 0.85) and/or a global thin-plate spline (0.5), never neither."""
    s = mask.shape[0]
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    points = np.stack([xs, ys], axis=-1)
    use_affine = rng.random() < 0.85
    use_tps = rng.random() < 0.5 or not use_affine
    if use_affine:
        points = _affine_about_centroid(mask, points, rng)
    if use_tps:
        points = points + tps_offsets(s, rng)
    return points.astype(np.float32)


def _near(mask: np.ndarray) -> np.ndarray:
    """Pixels within a quarter of the image around a mask (where its neighbours are)."""
    size = max(3, mask.shape[0] // 4) | 1
    return cv2.dilate((mask > 0.5).astype(np.uint8), np.ones((size, size), np.uint8)) > 0


def layout_pull(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A pulling field (S, S, 2) for moving, scaling or turning one region: its affine inside the
    region's new place, fading to the identity over a band around it (neighbours stretch)."""
    s = mask.shape[0]
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    identity = np.stack([xs, ys], axis=-1)
    moved = _affine_about_centroid(mask, identity, rng)
    placed = cv2.remap(mask, moved[..., 0], moved[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 0.5
    band = 0.6 * np.sqrt(mask.sum()) + 4.0
    distance = cv2.distanceTransform((~placed).astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.clip(1.0 - distance / band, 0.0, 1.0)[..., None]
    return (identity + fade * (moved - identity)).astype(np.float32)


def _affine_about_centroid(mask: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """points (S, S, 2) pulled by a random move/scale/turn/shear about the mask's centroid."""
    rows, cols = np.nonzero(mask > 0.5)
    centre = np.array([cols.mean(), rows.mean()], np.float32)
    extent = np.sqrt(mask.sum())
    angle = np.deg2rad(rng.uniform(-35, 35) if rng.random() < 0.5 else rng.uniform(-5, 5))
    scale = np.exp(rng.uniform(np.log(0.75), np.log(1.3)))
    scales = np.array([scale, scale * np.exp(rng.uniform(-0.1, 0.1))])
    shear = rng.uniform(-0.1, 0.1)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = rotation @ np.array([[scales[0], shear], [0.0, scales[1]]])  # exemplar -> target
    shift = rng.uniform(-0.35, 0.35, size=2) * extent
    pull = np.linalg.inv(forward).astype(np.float32)  # target -> exemplar
    return ((points - centre - shift) @ pull.T + centre).astype(np.float32)


def tps_offsets(size: int, rng: np.random.Generator, strength: float = 0.05, control: int = 4) -> np.ndarray:
    """A smooth random displacement (S, S, 2) in pixels: thin-plate-spline kernels on a
    control x control grid with random weights (strength is a share of the size)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    centres = (np.arange(control) + 0.5) / control
    offsets = np.zeros((size, size, 2), np.float32)
    weights = rng.normal(0.0, strength, size=(control, control, 2)) * size
    for i, cy in enumerate(centres):
        for j, cx in enumerate(centres):
            r2 = (xs - cx) ** 2 + (ys - cy) ** 2
            kernel = r2 * np.log(r2 + 1e-6)
            offsets += kernel[..., None] * weights[i, j]
    return offsets

"""The edit: which exemplar region becomes which target region.

An artist gives it in one of three ways, and each is turned into an `Edit` here, once:
- two masks (`from_masks`): move or reshape what the source selects into the target, laid in
  with the target's own soft coverage;
- two painted region maps (`from_colour_maps`): the same colour is the same region;
- two maps of region ids (`Edit(exemplar_labels, target_labels)`).
`Edit.fitted` then brings it to the exemplar's size (checked once, in engine.pipeline.run).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .errors import InputError
from .regions import maps_from_colour_pair, maps_from_edit, resize_labels

# A map whose aspect ratio differs from the exemplar's by less than this is resized to fit it.
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Edit:
    """exemplar_labels, target_labels: (H, W) integer maps; region i of the exemplar fills
    region i of the target. soft_target: (H, W) float32 in [0, 1] or None: for a two-region
    edit, region 1's coverage (a feathered selection). palette: (N, 3) uint8 or None: the colour
    each id was painted in, for display."""

    exemplar_labels: np.ndarray
    target_labels: np.ndarray
    soft_target: np.ndarray | None = None
    palette: np.ndarray | None = None

    @property
    def alphas(self) -> dict[int, np.ndarray] | None:
        """Each region's own coverage (H, W) where it has one (compose's `alphas`)."""
        if self.soft_target is None:
            return None
        return {1: np.clip(self.soft_target, 0.0, 1.0).astype(np.float32)}

    def fitted(self, height: int, width: int) -> Edit:
        """The edit at the exemplar's size (H, W): label maps resized (nearest) when only their
        scale differs, refused when their shape does; a soft target must already have it."""
        exemplar_labels = _fit_labels(np.asarray(self.exemplar_labels), height, width, "exemplar region map")
        target_labels = _fit_labels(np.asarray(self.target_labels), height, width, "target region map")
        if self.soft_target is not None and (
            self.soft_target.shape != (height, width) or int(target_labels.max()) > 1 or int(target_labels.min()) < 0
        ):
            raise InputError("a soft target applies to a two-region edit at the exemplar's size")
        return replace(self, exemplar_labels=exemplar_labels, target_labels=target_labels)

    def resized(self, height: int, width: int) -> Edit:
        """A smaller copy (H, W) for a preview: nearest labels, area-averaged soft target."""
        soft = self.soft_target
        if soft is not None:
            soft = cv2.resize(soft, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width)
        return replace(
            self,
            exemplar_labels=resize_labels(self.exemplar_labels, height, width),
            target_labels=resize_labels(self.target_labels, height, width),
            soft_target=soft,
        )


def from_masks(shape: tuple[int, int], source_mask: np.ndarray, target_mask: np.ndarray) -> Edit:
    """Move/reshape what `source_mask` selects into `target_mask` (both (H, W) in [0, 1]) in an
    exemplar of `shape` (H, W). A mask drawn at another scale, in the exemplar's proportions, is
    resized to it (bilinear), as region maps are. The region is what the source selects at 50%
    or more; the target mask is also its soft coverage."""
    height, width = shape
    source_mask = _fit_mask(np.asarray(source_mask, np.float32), height, width, "source mask")
    target_mask = _fit_mask(np.asarray(target_mask, np.float32), height, width, "target mask")
    exemplar_labels, target_labels = maps_from_edit(source_mask, target_mask)
    return Edit(exemplar_labels, target_labels, soft_target=target_mask)


def from_colour_maps(exemplar_map: np.ndarray, target_map: np.ndarray) -> Edit:
    """Two painted region maps (each (H, W, 3) uint8): the same colour is the same region."""
    exemplar_labels, target_labels, palette = maps_from_colour_pair(exemplar_map, target_map)
    return Edit(exemplar_labels, target_labels, palette=palette)


def _fit_labels(labels: np.ndarray, height: int, width: int, what: str) -> np.ndarray:
    if labels.shape == (height, width):
        return labels
    _check_proportions(labels.shape, height, width, what)
    return resize_labels(labels, height, width)


def _fit_mask(mask: np.ndarray, height: int, width: int, what: str) -> np.ndarray:
    if mask.shape == (height, width):
        return mask
    _check_proportions(mask.shape, height, width, what)
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width)


def _check_proportions(shape: tuple[int, ...], height: int, width: int, what: str) -> None:
    h, w = shape[:2]
    if len(shape) != 2 or abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"the {what} is {w}x{h} but the exemplar is {width}x{height}, a different shape: "
            f"draw it on a copy of the exemplar (same size, or the same proportions)"
        )

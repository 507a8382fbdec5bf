"""From an exemplar and two region maps to the manipulated image: the engine's one entry point.

Validates the inputs (sizes, finiteness, region pairing), asks the model for each region's
motion, and composes the result at the exemplar's full resolution (engine.compose: staying
regions untouched, moving regions transported, vacated pixels filled from their own region).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .graph_blend import choose_blend
from .models import DEFAULT_MODEL, load_model
from .regions import maps_from_edit, paired_ids, resize_labels
from .compose import Provenance, compose
from .transport import RegionMotion

# More regions than this is almost always an over-segmented map; each costs a model call.
DEFAULT_MAX_REGIONS = 128
# A map whose aspect ratio differs from the exemplar's by less than this is resized to fit it.
ASPECT_TOLERANCE = 0.01

# progress(stage, fraction): called often (per region and per motion); it may raise to cancel.
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Manipulation:
    """A result with what produced it: pixels (H, W, C) float32, both label maps (H, W) int32,
    the motion of each target region, the ids of the regions that moved, how each pixel came
    (H, W) uint8 (engine.compose's UNCHANGED, WARPED, FILLED), the edit zone (H, W) bool and,
    when asked for, the full provenance."""

    pixels: np.ndarray
    exemplar_labels: np.ndarray
    target_labels: np.ndarray
    motions: dict[int, RegionMotion]
    moving: tuple[int, ...]
    kind: np.ndarray
    edit_zone: np.ndarray
    provenance: Provenance | None


def fit_labels(labels: np.ndarray, height: int, width: int, what: str) -> np.ndarray:
    """Bring a label map to the exemplar's size: resized (nearest) when only its scale differs,
    refused when its shape does."""
    h, w = labels.shape
    if (h, w) == (height, width):
        return labels
    if abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(
            f"the {what} is {w}x{h} but the exemplar is {width}x{height}, a different shape: "
            f"draw the map on a copy of the exemplar (same size, or the same proportions)"
        )
    return resize_labels(labels, height, width)


def run(
    exemplar: np.ndarray,
    exemplar_regions: np.ndarray,
    target_regions: np.ndarray,
    model: str | object = DEFAULT_MODEL,
    progress: Progress | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
    provenance: bool = False,
    soft_target: np.ndarray | None = None,
) -> Manipulation:
    """Manipulate `exemplar` (H, W, C) float32 so that region i of `exemplar_regions` fills
    region i of `target_regions` (label maps, resized to the exemplar if only their scale
        differs). `model` is a model name (see engine.models) or a loaded model. For a two-region
    edit, `soft_target` (H, W) in [0, 1] lays region 1 in with that coverage (a feathered
    selection). `provenance`: also say where every pixel came from. Returns a `Manipulation`."""
    exemplar = _check_exemplar(exemplar)
    height, width = exemplar.shape[:2]
    exemplar_labels = fit_labels(np.asarray(exemplar_regions), height, width, "exemplar region map")
    target_labels = fit_labels(np.asarray(target_regions), height, width, "target region map")
    ids = paired_ids(exemplar_labels, target_labels)
    if len(ids) > max_regions:
        raise InputError(
            f"the target map has {len(ids)} regions, more than the limit of {max_regions}: "
            f"merge small regions (e.g. `simnet segment --max-regions 32`)"
        )
    chosen = load_model(model) if isinstance(model, str) else model
    report = progress or (lambda stage, fraction: None)
    report("motion", 0.0)
    motions = {}
    if hasattr(chosen, "region_motions"):  # batched: one graph call per chunk of regions
        batched = chosen.region_motions(exemplar, exemplar_labels, target_labels, ids)
        motions = {int(r): m for r, m in zip(ids, batched)}
    else:
        for done, region in enumerate(ids):
            report("motion", done / len(ids))
            motions[int(region)] = chosen.region_motion(
                exemplar, exemplar_labels == region, target_labels == region
            )
    report("motion", 1.0)
    result = compose(
        exemplar,
        exemplar_labels,
        target_labels,
        motions,
        alphas=_soft_alphas(soft_target, motions, (height, width)),
        graph=choose_blend(chosen),
        want_provenance=provenance,
        on_progress=lambda fraction: report("transport", fraction),
    )
    return Manipulation(
        result.pixels, exemplar_labels, target_labels, motions, result.moving, result.kind, result.edit_zone, result.provenance
    )


def _soft_alphas(soft_target, motions, shape):
    if soft_target is None:
        return None
    if sorted(motions) != [0, 1] or soft_target.shape != tuple(shape):
        raise InputError("a soft target applies to a two-region edit at the exemplar's size")
    return {1: np.clip(soft_target, 0.0, 1.0).astype(np.float32)}


def manipulate(
    exemplar: np.ndarray,
    exemplar_regions: np.ndarray,
    target_regions: np.ndarray,
    model: str = DEFAULT_MODEL,
    progress: Progress | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
) -> np.ndarray:
    """The manipulated image (H, W, C) float32; see `run`."""
    return run(exemplar, exemplar_regions, target_regions, model, progress, max_regions).pixels


def manipulate_masks(
    exemplar: np.ndarray,
    source_mask: np.ndarray,
    target_mask: np.ndarray,
    model: str = DEFAULT_MODEL,
    progress: Progress | None = None,
) -> np.ndarray:
    """Move/reshape what `source_mask` selects into `target_mask` (both (H, W) in [0, 1],
    the exemplar's size). The region is what the source selects at 50% or more; it is laid in
    with the target mask's own soft coverage (feathered edges stay feathered). Returns
    (H, W, C) float32."""
    exemplar = _check_exemplar(exemplar)
    exemplar_labels, target_labels = edit_labels(exemplar.shape[:2], source_mask, target_mask)
    return run(exemplar, exemplar_labels, target_labels, model, progress, soft_target=target_mask).pixels


def edit_labels(
    shape: tuple[int, int], source_mask: np.ndarray, target_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The two label maps of a source/target mask edit, after checking that both masks have
    the exemplar's `shape` (H, W)."""
    for name, mask in (("source", source_mask), ("target", target_mask)):
        if mask.shape != tuple(shape):
            raise InputError(
                f"the {name} mask is {mask.shape[1]}x{mask.shape[0]} but the exemplar is "
                f"{shape[1]}x{shape[0]}: masks must have the exemplar's size"
            )
    return maps_from_edit(source_mask, target_mask)


def _check_exemplar(exemplar: np.ndarray) -> np.ndarray:
    exemplar = np.asarray(exemplar)
    if exemplar.ndim == 2:
        exemplar = exemplar[:, :, None]
    if exemplar.ndim != 3 or exemplar.shape[2] not in (1, 3, 4) or min(exemplar.shape[:2]) < 1:
        raise InputError(f"the exemplar must be (H, W, C) with C in 1, 3, 4; got {exemplar.shape}")
    exemplar = exemplar.astype(np.float32, copy=False)
    if not np.isfinite(exemplar).all():
        raise InputError("the exemplar holds NaN or infinite values")
    return exemplar

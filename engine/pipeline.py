"""From an exemplar and an edit to the manipulated image: the engine's one entry point.

Checks the exemplar and the edit against it (sizes, finiteness, region pairing), asks the model
for each region's motion (a smooth map instead where a region was reshaped non-rigidly,
engine.reshape), and composes the result at the exemplar's full resolution
(engine.compose: staying regions untouched, moving regions transported, vacated pixels filled
from their own region).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .compose import Provenance, compose
from .edit import Edit, from_masks
from .errors import InputError
from .models import MotionModel, load_model
from .motion import RegionMotion
from .regions import paired_ids
from .replay import SolvedEdit
from .reshape import reshaped_motions
from .runtime.blend_graph import choose_blend

# More regions than this is almost always an over-segmented map; each costs a model call.
DEFAULT_MAX_REGIONS = 128

# progress(stage, fraction): called often (per region and per motion); it may raise to cancel.
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Manipulation:
    """A result with what produced it: pixels (H, W, C) float32, both label maps (H, W) int32,
    the motion of each target region, the ids of the regions that moved, how each pixel came
    (H, W) uint8 (engine.compose's UNCHANGED, WARPED, FILLED), the edit zone (H, W) bool and,
    when asked for, the full provenance and the solved edit to replay on other layers
    (engine.replay)."""

    pixels: np.ndarray
    exemplar_labels: np.ndarray
    target_labels: np.ndarray
    motions: dict[int, RegionMotion]
    moving: tuple[int, ...]
    kind: np.ndarray
    edit_zone: np.ndarray
    provenance: Provenance | None
    solved: SolvedEdit | None = None


def run(
    exemplar: np.ndarray,
    edit: Edit,
    model: str | MotionModel | None = None,
    progress: Progress | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
    provenance: bool = False,
    reshape: bool = True,
    solved: bool = False,
) -> Manipulation:
    """Manipulate `exemplar` (H, W, C) float32 as `edit` says (engine.edit; its maps are resized
    to the exemplar if only their scale differs). `model` is a model name (engine.models; None:
    the default) or a loaded model. `provenance`: also say where every pixel came from.
    `reshape`: carry non-rigidly reshaped regions by a smooth map (engine.reshape) instead of
    the model's affine motions. `solved`: also return the edit as an engine.replay.SolvedEdit."""
    exemplar = _check_exemplar(exemplar)
    height, width = exemplar.shape[:2]
    edit = edit.fitted(height, width)
    ids = paired_ids(edit.exemplar_labels, edit.target_labels)
    if len(ids) > max_regions:
        raise InputError(
            f"the target map has {len(ids)} regions, more than the limit of {max_regions}: "
            f"merge small regions (e.g. `simnet segment --max-regions 32`)"
        )
    chosen = model if model is not None and not isinstance(model, str) else load_model(model)
    report = progress or (lambda stage, fraction: None)
    report("motion", 0.0)
    found = chosen.region_motions(
        exemplar, edit.exemplar_labels, edit.target_labels, ids.tolist(), lambda fraction: report("motion", fraction)
    )
    motions = {int(region): motion for region, motion in zip(ids, found)}
    if reshape:
        motions = reshaped_motions(edit.exemplar_labels, edit.target_labels, motions)
    report("motion", 1.0)
    result = compose(
        exemplar,
        edit.exemplar_labels,
        edit.target_labels,
        motions,
        alphas=edit.alphas,
        graph=choose_blend(chosen),
        want_provenance=provenance,
        on_progress=lambda fraction: report("transport", fraction),
        want_solved=solved,
    )
    return Manipulation(
        result.pixels,
        edit.exemplar_labels,
        edit.target_labels,
        motions,
        result.moving,
        result.kind,
        result.edit_zone,
        result.provenance,
        result.solved,
    )


def solve(
    exemplar: np.ndarray,
    edit: Edit,
    model: str | MotionModel | None = None,
    progress: Progress | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
) -> SolvedEdit:
    """Solve `edit` on `exemplar` (H, W, C) once (see `run`), as a value that engine.replay.apply
    replays on any layer of the same size: the way to give every layer of a stack the same edit."""
    found = run(exemplar, edit, model, progress, max_regions, solved=True).solved
    assert found is not None  # run(solved=True) always describes its result
    return found


def manipulate(
    exemplar: np.ndarray,
    exemplar_regions: np.ndarray,
    target_regions: np.ndarray,
    model: str | None = None,
    progress: Progress | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
) -> np.ndarray:
    """The manipulated image (H, W, C) float32: region i of `exemplar_regions` fills region i
    of `target_regions` (label maps (H, W)); see `run`."""
    return run(exemplar, Edit(exemplar_regions, target_regions), model, progress, max_regions).pixels


def manipulate_masks(
    exemplar: np.ndarray,
    source_mask: np.ndarray,
    target_mask: np.ndarray,
    model: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Move/reshape what `source_mask` selects into `target_mask` (both (H, W) in [0, 1],
    the exemplar's size). The region is what the source selects at 50% or more; it is laid in
    with the target mask's own soft coverage (feathered edges stay feathered). Returns
    (H, W, C) float32."""
    exemplar = _check_exemplar(exemplar)
    return run(exemplar, from_masks(exemplar.shape[:2], source_mask, target_mask), model, progress).pixels


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

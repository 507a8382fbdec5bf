"""Non-rigid reshapes: a smooth dense correspondence where no affine explains a region's new outline.

A model answers each region with affine motions. That is right for moves, turns and scales, and
wrong for a bent tree or a raised peak, where a few blended affines give a shear with a step.
For each region of an edit:

1. Rigid or not. The baseline's alignment (engine.models.alignment: moments and contours, robust
   to the region's own turn and scale) gives the best single affine, or the identity. When it
   pulls an exemplar mask whose IoU with the target is RIGID_FIT or more, the edit is rigid and
   the model's motion is kept as it is.
2. Hidden, not reshaped. When the target fits inside the exemplar region moved by some shift
   (HIDDEN of it inside) and much of its outline lies on the moved exemplar's outline
   (SHARED_OUTLINE), it is the visible part of the moved region: the rest is behind a
   neighbour or cut by the frame. It is carried by that shift. Squeezing or shearing the whole
   region into its visible part, as a motion fitted to the truncated outline does, is wrong.
3. Otherwise the outlines are matched (engine.outlines, with that affine as the prior) and a
   regularised thin-plate spline (engine.thin_plate) through the matched points carries the
   exemplar region into the target smoothly, interior included.
4. Re-layout. When some reshaped regions trade their pixels mostly with each other (not with
   regions that are deleted, new, moved rigidly or hidden: a background around a moved figure
   only trades with the figure, and is revealed by engine.compose, never stretched), the two
   label maps are registered as a whole (engine.register) into one smooth map. A reshaped
   region takes it when it is clearly better than the region's affine and within
   JOINT_TOLERANCE of its own spline. The map then grows over every region (reshaped, nudged
   or carried along) that trades mostly with its regions and that it explains within
   JOINT_TOLERANCE of the region's own motion, so one map lies on both sides of each shared
   border. A region never takes it where it would stretch the brushwork into streaks over what
   the region gained (`smears`). Regions that do not take it go on to steps 5 and 6; engine.compose
   moves a region with the re-layout's map, and treats a region's own spline as before.
5. Continuity for the rest. Reshaped regions left that touch in the target map are fitted as
   one spline through all their points, so a shared boundary stays shared (no tear), as long
   as the joint spline explains each of them within JOINT_TOLERANCE of its own.
6. A spline replaces the model's motion only when it explains the target clearly better
   (at most DENSE_GAIN of the affine's mismatch) and does not fold over (its Jacobian
   determinant stays positive over the region). A joined group takes its spline when it is
   clearly better for one member and no worse than the affine for any.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import cv2
import numpy as np

from .masks import region_box, region_grid, sample_mask
from .models.alignment import Alignment, align
from .motion import FIELD_SLOT, IDENTITY, RegionMotion, SmoothMap, pixel_to_normalised_affines, points_to_normalised
from .outlines import match_outlines, outline
from .regions import id_counts
from .register import register_maps
from .thin_plate import ThinPlate, central_jacobians

RIGID_FIT = 0.95
HIDDEN = 0.985
SHARED_OUTLINE = 0.4
# The shift search for hidden regions runs on masks at most this many cells on a side first.
SEARCH_SIDE = 96
DENSE_GAIN = 0.6
JOINT_TOLERANCE = 0.01
OUTLINE_POINTS = 96
# Spline control points at most, for one region or a joined group (the per-pixel cost is linear in it).
MAX_CENTRES = 192
# Regularisation of the spline, in kernel units (engine.thin_plate): enough to absorb a pixel of
# contour noise, far too little to flatten a bend.
SMOOTHING = 1e-3
SAMPLES = 6000
KEYPOINTS_SHOWN = 12
# A re-layout's map may stretch a region's brushwork at most 1 / MIN_SQUEEZE times over what
# it gained (`smears`), checked at up to MAX_GAIN_CHECKED pixels.
MIN_SQUEEZE = 0.33
MAX_GAIN_CHECKED = 3000


def reshaped_motions(
    exemplar_labels: np.ndarray, target_labels: np.ndarray, motions: dict[int, RegionMotion]
) -> dict[int, RegionMotion]:
    """The motions with every non-rigidly reshaped region's replaced by its smooth map (see the
    module docstring). Label maps (H, W) int; motions by target region id."""
    height, width = target_labels.shape
    scale = float(max(height, width))
    candidates: dict[int, _Candidate] = {}
    shifted: dict[int, RegionMotion] = {}
    # what a region's own motion explains, for the regions that may join a re-layout's map:
    # (exemplar mask, target samples, areas, the map's fit it must reach)
    joinable: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, int], float]] = {}
    # regions whose change is no reshape: deleted, new, moved rigidly or only partly hidden (not
    # one that stays where it was, which is what a bend's neighbours do)
    settled = set(id_counts(exemplar_labels)[0].tolist()) ^ set(id_counts(target_labels)[0].tolist())
    for region, motion in motions.items():
        source_mask, target_mask = exemplar_labels == region, target_labels == region
        if not source_mask.any() or not target_mask.any() or np.array_equal(source_mask, target_mask):
            continue
        alignment, samples = align(source_mask, target_mask), _samples(target_mask)
        rigid_fit, moved = _rigid_fit(source_mask, target_mask, alignment, samples)
        if rigid_fit >= RIGID_FIT:
            if moved:
                settled.add(region)
            areas = (int(np.count_nonzero(source_mask)), int(np.count_nonzero(target_mask)))
            joinable[region] = (source_mask, samples, areas, rigid_fit - JOINT_TOLERANCE)
            continue
        shift = visible_part_shift(source_mask, target_mask)
        if shift is not None:
            shifted[region] = shifted_motion(motion, shift, target_mask)
            settled.add(region)
            continue
        found = _candidate(source_mask, target_mask, alignment, samples, rigid_fit)
        if found is not None:
            candidates[region] = found
    chosen: dict[int, SmoothMap] = {}
    trades = Trades(exemplar_labels, target_labels)
    # a background around a figure that moved or was deleted only trades with the figure: it stays
    # and is revealed (engine.compose), not stretched over the gap by the re-layout's map
    reshaped_together = [r for r in candidates if trades.share(r, settled) < 0.5]
    layout = register_maps(exemplar_labels, target_labels) if reshaped_together else None
    if layout is not None:
        chosen.update({r: layout for r in reshaped_together
                       if candidates[r].takes_layout(layout) and not smears(layout, trades.gained(r))})
        for region, candidate in candidates.items():
            if region not in chosen:
                best = max(candidate.rigid_fit, candidate.own_fit)
                joinable[region] = (candidate.source_mask, candidate.samples, candidate.areas, best - JOINT_TOLERANCE)
        # The map grows over the regions that trade mostly with its regions and that it explains
        # about as well as their own motions do (a figure carried along, a neighbour nudged): one
        # map on both sides of every shared border, so none tears.
        grew = bool(chosen)
        while grew:
            grew = False
            for region, (source_mask, samples, areas, needed) in list(joinable.items()):
                if (trades.share(region, set(chosen)) >= 0.5
                        and map_fit(source_mask, samples, areas, layout) >= needed
                        and _unfolded(layout, samples)
                        and not smears(layout, trades.gained(region))):
                    chosen[region] = layout
                    del joinable[region]
                    grew = True
    for group in _touching_groups(target_labels, [r for r in candidates if r not in chosen]):
        own_fits = {r: candidates[r].own_fit for r in group}
        if len(group) > 1:
            target = np.concatenate([candidates[r].target for r in group])
            source = np.concatenate([candidates[r].source for r in group])
            keep = np.linspace(0, len(target) - 1, min(len(target), MAX_CENTRES)).round().astype(int)
            joint = ThinPlate.fit(target[keep], source[keep], scale, SMOOTHING)
            fits = {r: candidates[r].fit(joint) for r in group}
            if (all(fits[r] >= own_fits[r] - JOINT_TOLERANCE for r in group)
                    and all(fits[r] >= candidates[r].rigid_fit and candidates[r].unfolded(joint) for r in group)
                    and any(candidates[r].clearly_better(fits[r]) for r in group)):
                chosen.update(dict.fromkeys(group, joint))
                continue
        for region in group:
            candidate = candidates[region]
            if candidate.clearly_better(own_fits[region]) and candidate.unfolded(candidate.spline):
                chosen[region] = candidate.spline
    reshaped = {region: field_motion(motions[region], spline, target_labels == region) for region, spline in chosen.items()}
    return {region: reshaped.get(region, shifted.get(region, motion)) for region, motion in motions.items()}


def smears(field: SmoothMap, gained: np.ndarray) -> bool:
    """Whether `field` would stretch a region's exemplar pixels into streaks over the pixel
    points (N, 2) it gained (`Trades.gained`): on a tenth or more of them (up to
    MAX_GAIN_CHECKED) the map squeezes some direction below MIN_SQUEEZE, so a brushstroke comes
    out more than 1 / MIN_SQUEEZE times as long. That region is better left standing, with what
    it gained filled (engine.compose)."""
    if len(gained) == 0:
        return False
    points = gained[:: max(1, len(gained) // MAX_GAIN_CHECKED)]
    smallest = np.linalg.svd(central_jacobians(field.pull, points), compute_uv=False)[:, 1]
    return bool(np.percentile(smallest, 10) < MIN_SQUEEZE)


class Trades:
    """The pixels whose label changed between two (H, W) label maps, found once: where each is
    and which region it went from (lost_by) and to (gained_by)."""

    def __init__(self, exemplar_labels: np.ndarray, target_labels: np.ndarray):
        self.rows, self.cols = np.nonzero(exemplar_labels != target_labels)
        self.lost_by = exemplar_labels[self.rows, self.cols]
        self.gained_by = target_labels[self.rows, self.cols]

    def share(self, region: int, others: set[int]) -> float:
        """The share of the pixels a region gained or lost that it traded with `others`: gained
        from them or lost to them (1 when it traded none)."""
        partners = np.concatenate([self.lost_by[self.gained_by == region], self.gained_by[self.lost_by == region]])
        return float(np.isin(partners, list(others)).mean()) if partners.size else 1.0

    def gained(self, region: int) -> np.ndarray:
        """The pixel points (N, 2) x, y that a region gained, row by row."""
        pick = self.gained_by == region
        return np.stack([self.cols[pick], self.rows[pick]], axis=1).astype(np.float64)


def map_fit(source_mask: np.ndarray, samples: np.ndarray, areas: tuple[int, int], field: SmoothMap) -> float:
    """IoU with the target region of the exemplar region (H, W) bool pulled by `field`, from
    the target's samples (N, 2) and the two regions' areas (exemplar, target); the pulled
    region's area from the mean Jacobian determinant."""
    # a pull past the frame counts as the frame's pixel: a region cut by the frame goes on beyond it
    height, width = source_mask.shape
    inside = sample_mask(source_mask, np.clip(field.pull(samples), 0, [width - 1, height - 1])).mean()
    stretch = np.abs(field.jacobian_determinants(samples[:: max(1, len(samples) // 500)])).mean()
    return _pulled_iou(inside, *areas, stretch)


def _rigid_fit(
    source_mask: np.ndarray, target_mask: np.ndarray, alignment: Alignment, samples: np.ndarray
) -> tuple[float, bool]:
    """IoU with the target of the exemplar region pulled by the alignment's affine or the
    identity, whichever is better (at the target's samples (N, 2)), and whether the affine
    (a move) gave it."""
    source_area, target_area = int(np.count_nonzero(source_mask)), int(np.count_nonzero(target_mask))
    fits = []
    for affine in (alignment.moved, IDENTITY):
        inside = sample_mask(source_mask, samples @ affine[:, :2].T + affine[:, 2]).mean()
        fits.append(_pulled_iou(inside, source_area, target_area, abs(np.linalg.det(affine[:, :2]))))
    return max(fits), fits[0] > fits[1]


def _pulled_iou(inside: float, source_area: int, target_area: int, stretch: float) -> float:
    """IoU with the target region of the exemplar region pulled by a map, from the share of
    the target's samples that land inside the exemplar region and the map's mean |Jacobian
    determinant| (the pulled region's area is the exemplar's divided by it)."""
    overlap = inside * target_area
    pulled_area = source_area / max(stretch, 1e-12)
    return float(overlap / max(target_area + pulled_area - overlap, 1e-12))


def visible_part_shift(source_mask: np.ndarray, target_mask: np.ndarray) -> np.ndarray | None:
    """The pulling shift (2, 3) pixel affine that places a target region (H, W) bool inside the
    exemplar region as its visible part (step 2 of the module docstring), or None when the
    target is not such a part. Masks must not be empty."""
    sx0, sy0, sx1, sy1 = region_box(source_mask)
    tx0, ty0, tx1, ty1 = region_box(target_mask)
    source, target = source_mask[sy0:sy1, sx0:sx1], target_mask[ty0:ty1, tx0:tx1]
    if target.shape[0] > source.shape[0] or target.shape[1] > source.shape[1]:
        return None  # a part is never larger than the whole
    # Coarse on small masks, then at full resolution near the coarse offset.
    step = max(1, int(np.ceil(max(source.shape) / SEARCH_SIDE)))
    if step > 1:
        def shrink(mask: np.ndarray) -> np.ndarray:
            size = (max(1, mask.shape[1] // step), max(1, mask.shape[0] // step))
            return cv2.resize(mask.view(np.uint8) * np.float32(1), size, interpolation=cv2.INTER_AREA) >= 0.5
        small_source, small_target = shrink(source), shrink(target)
        if small_target.shape[0] > small_source.shape[0] or small_target.shape[1] > small_source.shape[1]:
            return None
        coarse = _part_offset(small_source, small_target)
        if coarse is None:
            return None
        x0, y0 = max(0, (coarse[0] - 1) * step), max(0, (coarse[1] - 1) * step)
        x1 = min(source.shape[1], (coarse[0] + 2) * step + target.shape[1])
        y1 = min(source.shape[0], (coarse[1] + 2) * step + target.shape[0])
    else:
        x0, y0, (y1, x1) = 0, 0, source.shape
    fine = _part_offset(source[y0:y1, x0:x1], target)
    if fine is None:
        return None
    offset = np.array([sx0 + x0 + fine[0] - tx0, sy0 + y0 + fine[1] - ty0], np.float64)
    return np.concatenate([np.eye(2), offset[:, None]], axis=1)


def _part_offset(source: np.ndarray, target: np.ndarray) -> tuple[int, int] | None:
    """The offset (x, y) of `target` (h, w) bool inside `source` (H, W) bool (h <= H, w <= W)
    at which HIDDEN of it lies inside and most of its outline on source's outline; None when
    no offset has both."""
    def rim(mask: np.ndarray, width: int) -> np.ndarray:
        padded = np.pad(mask.view(np.uint8), width)
        inner = cv2.erode(padded, np.ones((2 * width + 1, 2 * width + 1), np.uint8))
        return (padded & ~inner.view(bool))[width:-width, width:-width].astype(np.float32)

    inside = cv2.matchTemplate(source.astype(np.float32), target.astype(np.float32), cv2.TM_CCORR)
    # the target's 1-px outline against a 2-px band inside source's, so a pixel off still counts
    shared = cv2.matchTemplate(rim(source, 2), rim(target, 1), cv2.TM_CCORR)
    outline_length = max(float(rim(target, 1).sum()), 1.0)
    score = np.where(inside >= HIDDEN * np.count_nonzero(target) - 0.5, shared, -1.0)
    _, best, _, (x, y) = cv2.minMaxLoc(score)
    return (x, y) if best >= SHARED_OUTLINE * outline_length else None


class _Candidate:
    """A region whose outline no affine explains: its matched outline points (N, 2) target and
    source, the spline through them, the best affine's fit (IoU), and the samples that score a
    spline."""

    def __init__(
        self,
        source_mask: np.ndarray,
        target_mask: np.ndarray,
        target_outline: np.ndarray,
        source_points: np.ndarray,
        spline: ThinPlate,
        rigid_fit: float,
        samples: np.ndarray,
    ):
        self.source_mask = source_mask
        self.target_mask = target_mask
        self.target = target_outline
        self.source = source_points
        self.spline = spline
        self.rigid_fit = rigid_fit
        self.samples = samples
        self.areas = (int(np.count_nonzero(source_mask)), int(np.count_nonzero(target_mask)))

    def fit(self, spline: SmoothMap) -> float:
        """IoU of the exemplar region pulled by the spline with the target (`map_fit`)."""
        return map_fit(self.source_mask, self.samples, self.areas, spline)

    @cached_property
    def own_fit(self) -> float:
        """The fit of the region's own spline (asked for by the re-layout and the joint fits)."""
        return self.fit(self.spline)

    def clearly_better(self, fit: float) -> bool:
        """Whether a spline's fit leaves at most DENSE_GAIN of the affine's mismatch."""
        return 1.0 - fit <= DENSE_GAIN * (1.0 - self.rigid_fit)

    def takes_layout(self, layout: SmoothMap) -> bool:
        """Whether the re-layout's map explains the region clearly better than its affine and
        within JOINT_TOLERANCE as well as its own spline, without folding."""
        fit = self.fit(layout)
        return self.clearly_better(fit) and fit >= self.own_fit - JOINT_TOLERANCE and self.unfolded(layout)

    def unfolded(self, spline: SmoothMap) -> bool:
        return _unfolded(spline, self.samples)


def _unfolded(field: SmoothMap, samples: np.ndarray) -> bool:
    """Whether the map's Jacobian determinant is positive at (up to 2000 of) the samples (N, 2)."""
    return bool((field.jacobian_determinants(samples[:: max(1, len(samples) // 2000)]) > 0).all())


def _candidate(
    source_mask: np.ndarray, target_mask: np.ndarray, alignment: Alignment, samples: np.ndarray, rigid_fit: float
) -> _Candidate | None:
    """Step 3 of the module docstring for one region; None when it has no outline to match."""
    source_outline, target_outline = outline(source_mask, OUTLINE_POINTS), outline(target_mask, OUTLINE_POINTS)
    if source_outline is None or target_outline is None:
        return None
    # The matching needs the outlines roughly in place first. Which prior does that depends on
    # the edit: the moments affine for a region moved and reshaped, the identity for one bent
    # or stretched where it stands (its base stays put; the affine would shear it all), the
    # centroids' shift between the two. Under each, the outlines are paired by arc length or by
    # warping (engine.outlines). The match that is bent least is kept.
    (c_src, c_tgt), scale = alignment.centroids, float(max(target_mask.shape))
    shift = np.concatenate([np.eye(2), (c_src - c_tgt)[:, None]], axis=1)
    matches = [
        match_outlines(source_outline, target_outline, prior, warp)
        for prior in (alignment.moved, IDENTITY, shift)
        for warp in (True, False)
    ]
    splines = [ThinPlate.fit(target_outline, m, scale, SMOOTHING) for m in matches]
    least = int(np.argmin([spline.bending_energy() for spline in splines]))
    return _Candidate(source_mask, target_mask, target_outline, matches[least], splines[least], rigid_fit, samples)


def _samples(mask: np.ndarray) -> np.ndarray:
    """About SAMPLES pixel points (N, 2) of a mask, on a regular grid."""
    rows, cols = np.nonzero(mask)
    step = max(1, int(np.sqrt(rows.size / SAMPLES)))
    pick = (rows % step == 0) & (cols % step == 0)
    return np.stack([cols[pick], rows[pick]], axis=1).astype(np.float64)


def _touching_groups(labels: np.ndarray, regions: list[int]) -> list[list[int]]:
    """`regions` split into groups that touch in `labels` (H, W), through each other."""
    kernel = np.ones((3, 3), np.uint8)
    near = {r: cv2.dilate((labels == r).view(np.uint8), kernel).view(bool) for r in regions}
    parent = {r: r for r in regions}

    def root(r: int) -> int:
        while parent[r] != r:
            r = parent[r]
        return r

    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if (near[a] & (labels == b)).any():
                parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for r in regions:
        groups.setdefault(root(r), []).append(r)
    return list(groups.values())


def field_motion(motion: RegionMotion, field: SmoothMap, target_mask: np.ndarray) -> RegionMotion:
    """A region's motion as the smooth map alone (its affine part in slot FIELD_SLOT, the map in
    `field`). Points of the region's outline and where they pull from are shown as keypoints."""
    points = outline(target_mask, KEYPOINTS_SHOWN)
    points = np.zeros((0, 2)) if points is None else points
    return _one_pull(motion, field.affine, field, points, field.pull(points), target_mask)


def shifted_motion(motion: RegionMotion, shift: np.ndarray, target_mask: np.ndarray) -> RegionMotion:
    """A region's motion as one pulling shift (2, 3) pixel affine; points of its outline are
    shown as keypoints."""
    points = outline(target_mask, KEYPOINTS_SHOWN)
    points = np.zeros((0, 2)) if points is None else points
    return _one_pull(motion, shift, None, points, points @ shift[:, :2].T + shift[:, 2], target_mask)


def _one_pull(
    motion: RegionMotion,
    affine: np.ndarray,
    field: SmoothMap | None,
    target_points: np.ndarray,
    source_points: np.ndarray,
    target_mask: np.ndarray,
) -> RegionMotion:
    """`motion` replaced by one pull: the identity with no weight, then `affine` (2, 3) pixels in
    slot FIELD_SLOT (and `field`, if any), all the weight on it over the target's box."""
    height, width = target_mask.shape
    grid_box, _, (grid_h, grid_w), _ = region_grid(target_mask)
    weights = np.zeros((2, grid_h, grid_w), np.float32)
    weights[FIELD_SLOT] = 1.0
    shown = np.linspace(0, len(target_points) - 1, min(len(target_points), KEYPOINTS_SHOWN)).round().astype(int)
    return replace(
        motion,
        affines=pixel_to_normalised_affines(np.array([IDENTITY, affine]), height, width),
        weights=weights,
        box=grid_box,
        keypoints_src=points_to_normalised(source_points[shown], height, width),
        keypoints_tgt=points_to_normalised(target_points[shown], height, width),
        colour_matrix=None,  # texture guidance was fitted to the model's motion, not this one
        luma_offset=None,
        field=field,
    )

"""The methods the quality benchmark compares. Each takes (exemplar (H, W, C), exemplar labels,
target labels) and returns (image (H, W, C), predicted labels (H, W)): the region each output
pixel was made from (the engine's provenance), for the mask IoU and boundary scores."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from engine import run
from engine.edit import Edit
from engine.io import imageio
from engine.models import model_names
from engine.models.alignment import align
from engine.models.moments import MomentsModel
from engine.outlines import match_outlines, outline
from engine.reshape import OUTLINE_POINTS, field_motion
from engine.thin_plate import ThinPlate

INPAINT_RADIUS = 5


def identity(exemplar, exemplar_labels, target_labels):
    """Return the exemplar unchanged: the floor every method must clear."""
    return exemplar, exemplar_labels


def engine_method(model, reshape: bool = True):
    """The engine with `model` (a name or a loaded model); `reshape`: engine.reshape's smooth
    maps for non-rigid reshapes (off: the model's affine motions everywhere)."""

    def method(exemplar, exemplar_labels, target_labels):
        edit = Edit(exemplar_labels, target_labels)
        manipulation = run(exemplar, edit, model=model, provenance=True, reshape=reshape)
        return manipulation.pixels, manipulation.provenance.source_region

    method.__doc__ = f"the engine with model '{model}'" + ("" if reshape else ", affine motions only")
    return method


class PlainSplineModel:
    """The plain peer of engine.reshape: every changed region carried by an interpolating
    thin-plate spline through its outline points matched under the moments affine, with no
    rigid path, no choice of prior, no smoothing and no joint fit across regions."""

    name = "plain-tps"
    description = "interpolating thin-plate spline through outline matches, every changed region"

    def region_motions(self, exemplar, exemplar_labels, target_labels, ids, progress=None):
        motions = MomentsModel().region_motions(exemplar, exemplar_labels, target_labels, ids, progress)
        scale = float(max(target_labels.shape))
        for index, region in enumerate(ids):
            source, target = exemplar_labels == region, target_labels == region
            if np.array_equal(source, target):
                continue
            source_outline, target_outline = outline(source, OUTLINE_POINTS), outline(target, OUTLINE_POINTS)
            if source_outline is None or target_outline is None:
                continue
            matched = match_outlines(source_outline, target_outline, align(source, target).moved)
            spline = ThinPlate.fit(target_outline, matched, scale)
            motions[index] = field_motion(motions[index], spline, target)
        return motions


def _moved_regions(exemplar_labels, target_labels):
    """Paste plan: for each region whose shape changed, its centroid shift and size ratio."""
    plan = []
    for region in np.unique(target_labels):
        source, target = exemplar_labels == region, target_labels == region
        overlap = (source & target).sum() / max((source | target).sum(), 1)
        if overlap > 0.98 or not source.any():
            continue
        (sy, sx), (ty, tx) = [np.argwhere(m).mean(0) for m in (source, target)]
        scale = np.sqrt(target.sum() / source.sum())
        # pulling affine: target z -> source centre + (z - target centre) / scale
        plan.append((region, np.array([[1 / scale, 0, sx - tx / scale], [0, 1 / scale, sy - ty / scale]])))
    return plan


def _cut_and_paste(exemplar, exemplar_labels, target_labels):
    height, width = target_labels.shape
    image, labels = exemplar.copy(), exemplar_labels.copy()
    pasted = np.zeros((height, width), bool)
    for region, affine in _moved_regions(exemplar_labels, target_labels):
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        moved = cv2.warpAffine(exemplar, affine, (width, height), flags=flags, borderMode=cv2.BORDER_REFLECT_101)
        region_mask = cv2.warpAffine((exemplar_labels == region).astype(np.uint8), affine, (width, height),
                                     flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
        place = region_mask & (target_labels == region)
        image[place] = moved.reshape(image.shape)[place]
        labels[place] = region
        pasted |= place
    # vacated: pixels whose exemplar region is not the target's and that nothing was pasted on
    hole = (exemplar_labels != target_labels) & ~pasted
    return image, labels, hole


def cut_paste_inpaint(exemplar, exemplar_labels, target_labels):
    """Move each changed region by its centroid (and size), paste it, and fill the vacated
    area with OpenCV's Telea inpainting."""
    image, labels, hole = _cut_and_paste(exemplar, exemplar_labels, target_labels)
    if hole.any():
        image = inpaint_opencv(image, hole)
        labels = np.where(hole, -1, labels)  # invented pixels come from no region
    return image, labels


def inpaint_opencv(image, hole):
    rgb8 = imageio.to_rgb8(image)
    filled = cv2.inpaint(rgb8, hole.astype(np.uint8) * 255, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    result = image.copy()
    result[hole, :3] = filled[hole].astype(np.float32) / 255.0
    return result


def gmic_available() -> bool:
    return shutil.which("gmic") is not None


def cut_paste_gmic(exemplar, exemplar_labels, target_labels):
    """As cut_paste_inpaint, but the vacated area is filled by G'MIC's inpaint_matchpatch."""
    image, labels, hole = _cut_and_paste(exemplar, exemplar_labels, target_labels)
    if hole.any():
        image = inpaint_gmic(image, hole)
        labels = np.where(hole, -1, labels)
    return image, labels


def inpaint_gmic(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """image (H, W, C) with its hole (H, W) bool filled by G'MIC's inpaint_matchpatch."""
    with tempfile.TemporaryDirectory() as folder:
        picture, mask, output = (Path(folder) / n for n in ("in.png", "mask.png", "out.png"))
        imageio.write_image(picture, imageio.to_rgb8(image) / 255.0)
        imageio.write_image(mask, hole.astype(np.float32))
        subprocess.run(
            ["gmic", str(picture), str(mask), "inpaint_matchpatch[0]", "[1]", "rm[1]", "output", str(output)],
            check=True, capture_output=True, timeout=300,
        )
        filled = imageio.read_image(output).pixels
    image = image.copy()
    image[hole, :3] = filled[hole, :3]
    return image


BEFORE_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from engine import pipeline
data = np.load(sys.argv[2])
model = {"model": sys.argv[4]} if sys.argv[4] else {}
if "source_mask" in data:
    pixels = pipeline.manipulate_masks(data["exemplar"], data["source_mask"], data["target_mask"], **model)
else:
    pixels = pipeline.manipulate(data["exemplar"], data["exemplar_labels"], data["target_labels"], **model)
np.save(sys.argv[3], pixels)
"""


class MethodFailed(Exception):
    """A method that could not make this edit (it is left out of that edit's rows)."""


def run_before(repo: Path, arrays: dict, model: str = "") -> np.ndarray:
    """The engine of another checkout (an older commit's worktree) on one edit, in its own
    process (its modules would shadow ours): `arrays` holds exemplar plus exemplar_labels and
    target_labels, or source_mask and target_mask; model "" is that engine's default."""
    with tempfile.TemporaryDirectory() as folder:
        inputs, output = Path(folder) / "in.npz", Path(folder) / "out.npy"
        np.savez(inputs, **arrays)
        ran = subprocess.run([sys.executable, "-c", BEFORE_SCRIPT, str(repo), str(inputs), str(output), model],
                             capture_output=True, timeout=600, cwd=repo)
        if ran.returncode != 0:
            last = ran.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise MethodFailed(f"the engine of {repo} failed: {' '.join(last)}")
        return np.load(output)


def before_method(repo: Path, model: str):
    """`run_before` as a quality method with `model`. Predicted labels: the target map (that
    engine has no provenance)."""

    def method(exemplar, exemplar_labels, target_labels):
        arrays = {"exemplar": exemplar, "exemplar_labels": exemplar_labels, "target_labels": target_labels}
        return run_before(repo, arrays, model), target_labels

    method.__doc__ = f"the engine of {repo} with model '{model}'"
    return method


def available_methods() -> dict:
    methods = {"identity": identity, "cut+paste+inpaint": cut_paste_inpaint}
    if gmic_available():
        methods["cut+paste+gmic"] = cut_paste_gmic
    for name in model_names():
        methods[name] = engine_method(name)
        methods[f"{name} affine"] = engine_method(name, reshape=False)
    methods["plain-tps"] = engine_method(PlainSplineModel(), reshape=False)
    return methods

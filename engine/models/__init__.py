"""The models that turn a pair of region masks into motions, and the registry that names them.

Every model is a `MotionModel`. Learned models are exported SIM-Net folders (card.json + ONNX
graphs): those shipped under engine/weights/ by name, or any exported folder by its path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import InputError
from ..motion import RegionMotion
from ..runtime.sessions import CARD
from .moments import MomentsModel

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# The shipped learned model: the default, since it beats the baseline on held-out paintings
# (bench/results/quality_heldout, the README's benchmarks).
LEARNED_MODEL = "simnet-small"
MAX_NAME = 1024


class MotionModel(Protocol):
    """What the pipeline asks of a model: each target region's motion (engine.motion)."""

    name: str
    description: str

    def region_motion(self, exemplar: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray) -> RegionMotion:
        """exemplar (H, W, C) float32 and one region's masks (H, W) bool -> its motion."""
        ...

    def region_motions(
        self,
        exemplar: np.ndarray,
        exemplar_labels: np.ndarray,
        target_labels: np.ndarray,
        ids: Sequence[int],
        progress: Callable[[float], None] | None = None,
    ) -> list[RegionMotion]:
        """The motion of every region id in `ids` (label maps (H, W)); `progress(fraction)` may
        raise to cancel."""
        ...


def shipped_models() -> dict[str, Path]:
    """Names of the learned models shipped with the engine -> their folders."""
    if not WEIGHTS.is_dir():
        return {}
    return {p.name: p for p in sorted(WEIGHTS.iterdir()) if (p / CARD).is_file()}


@cache
def default_model() -> tuple[str, str]:
    """The learned model where it can run, else the baseline and the reason (empty if none)."""
    if LEARNED_MODEL not in shipped_models():
        return MomentsModel.name, f"the learned model {LEARNED_MODEL} is not installed"
    if importlib.util.find_spec("onnxruntime") is None:
        return MomentsModel.name, "ONNX Runtime is not installed: pip install 'simnet-manipulate[cpu]' for the learned model"
    return LEARNED_MODEL, ""


def model_names() -> list[str]:
    return sorted([MomentsModel.name, *shipped_models()])


def model_descriptions() -> dict[str, str]:
    """Each available model's name -> its one-line description, without loading any."""
    from .learned import LearnedModel

    described = {name: LearnedModel.describe(folder) for name, folder in shipped_models().items()}
    return dict(sorted({MomentsModel.name: MomentsModel.description, **described}.items()))


def load_model(name: str | None = None, device: str = "auto") -> MotionModel:
    """A model by name (None: `default_model()`), or an exported model folder by path.
    `device` (auto, cpu, cuda) applies to learned models."""
    name = default_model()[0] if name is None else name
    if name == MomentsModel.name:
        return MomentsModel()
    from .learned import LearnedModel

    shipped = shipped_models()
    if name in shipped:
        return LearnedModel(name, shipped[name], device)
    if not 0 < len(name) <= MAX_NAME or "\0" in name:
        raise InputError(f"a model is a name or a folder path of 1 to {MAX_NAME} characters")
    folder = Path(name)
    try:
        is_model = (folder / CARD).is_file()
    except OSError as error:  # a path the system cannot look at (too long, say)
        raise InputError(f"cannot look for a model at {name[:200]!r}: {error.strerror}") from None
    if is_model:
        return LearnedModel(folder.name, folder, device)
    if folder.is_dir():
        raise InputError(f"{name} is not a model folder: no {CARD} (a model is exported with `simnet export`)")
    raise InputError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}, or give an exported model folder")

"""The models that turn a pair of region masks into motions. Each has a `name`, a one-line
`description` and `region_motion(exemplar, source_mask, target_mask) -> RegionMotion`; a model
that batches regions also has `region_motions(exemplar, exemplar_labels, target_labels, ids)`.

Learned models are exported SIM-Net folders (card.json + ONNX graphs): those shipped under
engine/weights/ by name, or any exported folder by its path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import InputError
from .moments import MomentsModel

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# The shipped learned model: the default, since it beats the baseline on held-out paintings
# (bench/results/quality_heldout, the README's benchmarks).
LEARNED_MODEL = "simnet-small"
MAX_NAME = 1024


def shipped_models() -> dict[str, Path]:
    """Names of the learned models shipped with the engine -> their folders."""
    if not WEIGHTS.is_dir():
        return {}
    return {p.name: p for p in sorted(WEIGHTS.iterdir()) if (p / "card.json").is_file()}


def _default_model() -> tuple[str, str]:
    """The learned model where it can run, else the baseline and the reason (empty if none)."""
    if LEARNED_MODEL not in shipped_models():
        return MomentsModel.name, f"the learned model {LEARNED_MODEL} is not installed"
    if importlib.util.find_spec("onnxruntime") is None:
        return MomentsModel.name, "ONNX Runtime is not installed: pip install 'simnet-manipulate[cpu]' for the learned model"
    return LEARNED_MODEL, ""


DEFAULT_MODEL, DEFAULT_NOTE = _default_model()


def model_names() -> list[str]:
    return sorted([MomentsModel.name, *shipped_models()])


def load_model(name: str, device: str = "auto"):
    """A model by name, or an exported model folder by path. `device` (auto, cpu, cuda) applies
    to learned models."""
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
        is_model = (folder / "card.json").is_file()
    except OSError as error:  # a path the system cannot look at (too long, say)
        raise InputError(f"cannot look for a model at {name[:200]!r}: {error.strerror}") from None
    if is_model:
        return LearnedModel(folder.name, folder, device)
    raise InputError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}, or give an exported model folder")

"""The models that turn a pair of region masks into motions. Each has a `name`, a one-line
`description` and `region_motion(exemplar, source_mask, target_mask) -> RegionMotion`; a model
that batches regions also has `region_motions(exemplar, exemplar_labels, target_labels, ids)`.

Learned models are exported SIM-Net folders (card.json + ONNX graphs): those shipped under
engine/weights/ by name, or any exported folder by its path.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .moments import MomentsModel

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
# The shipped learned model. It does not beat the baseline yet (bench/results/quality), so the
# default stays `moments` until one does; see the README's benchmarks.
LEARNED_MODEL = "simnet-small"


def shipped_models() -> dict[str, Path]:
    """Names of the learned models shipped with the engine -> their folders."""
    if not WEIGHTS.is_dir():
        return {}
    return {p.name: p for p in sorted(WEIGHTS.iterdir()) if (p / "card.json").is_file()}


DEFAULT_MODEL = MomentsModel.name


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
    folder = Path(name)
    if (folder / "card.json").is_file():
        return LearnedModel(folder.name, folder, device)
    raise InputError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}, or give an exported model folder")

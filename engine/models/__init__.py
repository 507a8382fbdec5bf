"""The models that turn a pair of region masks into motions. Each has a `name`, a one-line
`description` and `region_motion(exemplar, source_mask, target_mask) -> RegionMotion`."""

from __future__ import annotations

from ..errors import InputError
from .moments import MomentsModel

# The default until a learned model ships.
DEFAULT_MODEL = "moments"

_MODELS = {MomentsModel.name: MomentsModel}


def model_names() -> list[str]:
    return sorted(_MODELS)


def load_model(name: str):
    try:
        return _MODELS[name]()
    except KeyError:
        raise InputError(f"unknown model '{name}'; choose one of: {', '.join(model_names())}") from None

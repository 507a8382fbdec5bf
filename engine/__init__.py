"""SIM-Net Manipulate's host-agnostic engine: numpy in, numpy out.

    from engine import manipulate, manipulate_masks, segment
    result = manipulate(exemplar, exemplar_regions, target_regions)

    # one edit, every layer: solve once, replay on each layer of the same size
    solved = solve(painting, Edit(exemplar_regions, target_regions))
    layers = [apply(solved, layer) for layer in layers]

Pixel and coordinate conventions: engine.io.pixels and engine.motion. Inference never imports torch.
"""

from importlib.metadata import PackageNotFoundError, version

from .edit import Edit
from .errors import InputError
from .pipeline import manipulate, manipulate_masks, run, solve
from .replay import SolvedEdit, apply

try:
    __version__ = version("simnet-manipulate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Edit", "InputError", "SolvedEdit", "apply", "manipulate", "manipulate_masks", "run", "segment", "solve"]


def __getattr__(name: str):
    """`segment` on first use: scikit-image and SciPy take 0.4 s to import, which every CLI
    call and worker start paid before."""
    if name == "segment":
        from .segment import (
            segment as function,  # importing the module binds the module here...
        )

        globals()["segment"] = function  # ...so bind the function over it, as the eager import did
        return function
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

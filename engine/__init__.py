"""SIM-Net Manipulate's host-agnostic engine: numpy in, numpy out.

    from engine import manipulate, manipulate_masks, segment
    result = manipulate(exemplar, exemplar_regions, target_regions)

Pixel and coordinate conventions: engine.imageio and engine.motion. Inference never imports torch.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import InputError
from .pipeline import manipulate, manipulate_masks, run
from .segment import segment

try:
    __version__ = version("simnet-manipulate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["InputError", "manipulate", "manipulate_masks", "run", "segment"]

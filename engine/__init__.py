"""SIM-Net Manipulate's host-agnostic engine: numpy in, numpy out.

    from engine import manipulate, manipulate_masks, segment
    result = manipulate(exemplar, exemplar_regions, target_regions)

Pixel and coordinate conventions: engine.imageio and engine.motion. Inference never imports torch.
"""

from .errors import InputError
from .pipeline import manipulate, manipulate_masks, run
from .segment import segment

__all__ = ["InputError", "manipulate", "manipulate_masks", "run", "segment"]

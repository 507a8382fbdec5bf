"""Texture guidance: remove the seams that transport leaves, using only the exemplar's colours.

Transport builds a region from affine copies of the exemplar's own pixels, so what can go wrong
is where copies meet: (1) blending two differently placed copies averages their textures, which
lowers contrast and shifts the region's statistics away from the exemplar region's; (2) at the
region's edge, the light or tone carried along from the region's old place may not continue its
new surroundings. Two steps answer these, each from the exemplar alone:

1. Statistics alignment (per region, global): in YCbCr, the transported region's mean and
   standard deviation over its target mask are moved toward the exemplar region's over its source
   mask (a per-channel gain and offset, mixed in by a learned strength in [0, 1], gains bounded to
   [1/2, 2]). It is one 3x4 colour matrix per region, so the engine applies it at full resolution
   for free.
2. A seam-band residual: a three-layer convolutional net sees the aligned region, the exemplar at
   the target place (its surroundings) and the target mask's edge band, and predicts a luminance
   offset that is non-zero only on that band, where the edit moved the edge (an edge left in
   place has its own neighbours still, hence no seam), and bounded by `texture_max_shift`. Luminance only:
   it evens out tone across the seam without changing hue. Its last layer starts at zero, so an
   untrained module is the identity. The offset map is smooth and upsampled to full resolution.

Finally the result is clamped per channel to the exemplar region's own range, so no colour
brighter, darker or more saturated than the region's own ever appears (the engine clamps to the
full-resolution range).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SimNetConfig
from .geometry import band

# Full-range BT.601: ycc = RGB_TO_YCC @ rgb + YCC_OFFSET.
RGB_TO_YCC = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
YCC_OFFSET = (0.0, 0.5, 0.5)
GAIN_LIMITS = (0.5, 2.0)


def masked_statistics(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (B, C) of images (B, C, H, W) weighted by masks (B, 1, H, W)."""
    total = masks.sum(dim=(2, 3)) + 1e-6
    mean = (images * masks).sum(dim=(2, 3)) / total
    variance = (((images - mean[..., None, None]) ** 2) * masks).sum(dim=(2, 3)) / total
    return mean, torch.sqrt(variance + 1e-8)


def masked_range(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel min and max (B, C, 1, 1) over mask > 0.5; [0, 1] where the mask is empty."""
    inside = masks > 0.5
    low = torch.where(inside, images, torch.full_like(images, 2.0)).amin(dim=(2, 3), keepdim=True)
    high = torch.where(inside, images, torch.full_like(images, -1.0)).amax(dim=(2, 3), keepdim=True)
    empty = low > high
    return torch.where(empty, torch.zeros_like(low), low), torch.where(empty, torch.ones_like(high), high)


def apply_colour_matrix(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """images (B, 3, H, W), matrices (B, 3, 4) -> (B, 3, H, W)."""
    return torch.einsum("bij,bjhw->bihw", matrices[:, :, :3], images) + matrices[:, :, 3, None, None]


class TextureGuidance(nn.Module):
    """transported (B, 3, S, S), exemplar (B, 3, S, S), source/target masks (B, 1, S, S) ->
    colour matrices (B, 3, 4) and luminance offsets (B, 1, S, S); see the module docstring."""

    def __init__(self, config: SimNetConfig):
        super().__init__()
        width = config.texture_channels
        self.band_width = config.texture_band
        self.max_shift = config.texture_max_shift
        self.strength = nn.Parameter(torch.zeros(()))  # sigmoid(0) = half strength at first
        self.residual = nn.Sequential(
            nn.Conv2d(8, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1),
        )
        offset = self.residual[-1]
        assert isinstance(offset, nn.Conv2d) and offset.bias is not None
        nn.init.zeros_(offset.weight)  # no seam correction at first
        nn.init.zeros_(offset.bias)
        self.register_buffer("to_ycc", torch.tensor(RGB_TO_YCC))
        self.register_buffer("to_rgb", torch.linalg.inv(torch.tensor(RGB_TO_YCC)))
        self.register_buffer("ycc_offset", torch.tensor(YCC_OFFSET))

    def colour_matrices(self, transported, exemplar, source_mask, target_mask):
        to_ycc, to_rgb = self.to_ycc, self.to_rgb
        ycc_out = torch.einsum("ij,bjhw->bihw", to_ycc, transported) + self.ycc_offset[:, None, None]
        ycc_src = torch.einsum("ij,bjhw->bihw", to_ycc, exemplar) + self.ycc_offset[:, None, None]
        mean_out, std_out = masked_statistics(ycc_out, target_mask)
        mean_src, std_src = masked_statistics(ycc_src, source_mask)
        full_gain = torch.clamp(std_src / std_out, *GAIN_LIMITS)
        strength = torch.sigmoid(self.strength)
        # ycc' = ycc + strength * (full_gain * (ycc - mean_out) + mean_src - ycc)
        gain = 1.0 + strength * (full_gain - 1.0)  # (B, 3)
        shift = strength * (mean_src - full_gain * mean_out) + (gain - 1.0) * self.ycc_offset  # (B, 3)
        linear = to_rgb @ (gain[:, :, None] * to_ycc)  # (B, 3, 3)
        offset = to_rgb @ shift[:, :, None]  # (B, 3, 1)
        return torch.cat([linear, offset], dim=2)

    def forward(self, transported, exemplar, source_mask, target_mask):
        matrices = self.colour_matrices(transported, exemplar, source_mask, target_mask)
        aligned = apply_colour_matrix(transported, matrices)
        moved = F.max_pool2d((target_mask - source_mask).abs(), 4 * self.band_width + 1, stride=1, padding=2 * self.band_width)
        seam = band(target_mask, self.band_width) * moved
        inputs = torch.cat([aligned, exemplar, target_mask, seam], dim=1)
        offsets = torch.tanh(self.residual(inputs)) * self.max_shift * seam
        return matrices, offsets


def guide(transported, exemplar, source_mask, matrices, offsets):
    """Apply texture guidance at the working resolution: (B, 3, S, S) -> (B, 3, S, S)."""
    low, high = masked_range(exemplar, source_mask)
    guided = apply_colour_matrix(transported, matrices) + offsets
    return torch.maximum(torch.minimum(guided, torch.maximum(high, transported)), torch.minimum(low, transported))

